/**
 * The aggregator's query API, every route needing the `query` scope while
 * API keys are on:
 *
 * - `GET /v1/aggregates`: the aggregations and the counters;
 * - `GET /v1/aggregates/:name?prefix=&limit=&cursor=`: its keys, page by page;
 * - `GET /v1/aggregates/:name/:key?from=&to=`: a key's windows, those
 *   sharing some time with `[from, to)` when a range is given;
 * - `GET /v1/aggregates/:name/:key/events`: the key's result as
 *   Server-Sent Events, on every change.
 *
 * Results come from KV `mesh_aggregates`, the durable copy every owner
 * writes per commit, so any instance answers for any key.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { JetStreamClient } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import { aggregateKvKey } from '@mesh/contracts';
import { sendError, sendJson, type AggregationDefinition, type HttpApp, type WindowResult } from '@mesh/runtime';
import type { AggregatorCounters } from './aggregator-worker';
import { keyPage } from './key-pages';
import { overlaps, parseNoParams, parsePageQuery, parseTimeRange, QueryParamError } from './query-params';
import { streamResultUpdates } from './result-updates';

export interface AggregateRoutesDeps {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  byName: ReadonlyMap<string, AggregationDefinition<any, any>>;
  js: JetStreamClient;
  results: KV;
  counters: AggregatorCounters;
  /** Comment line interval of the update streams (MESH_UPDATES_HEARTBEAT). */
  heartbeatMs: number;
}

function searchParams(req: IncomingMessage): URLSearchParams {
  return new URL(req.url ?? '/', 'http://localhost').searchParams;
}

/** The bucket is electing a leader or NATS is away: nothing is wrong with the request. */
function unavailable(res: ServerResponse, err: unknown): void {
  sendError(res, 503, `results are unavailable right now (${(err as Error).message}); retry`, {}, { 'retry-after': '1' });
}

export function aggregateRoutes(http: HttpApp, d: AggregateRoutesDeps): void {
  const { byName, results } = d;
  const unknown = (res: ServerResponse, name: string) =>
    sendError(res, 404, `unknown aggregation '${name}'; known aggregations: ${[...byName.keys()].join(', ')}`);
  /** Run `answer` with the parsed parameters, or answer 400 naming the bad one. */
  const withParams = <Q>(res: ServerResponse, parse: () => Q, answer: (q: Q) => Promise<void>): Promise<void> | void => {
    let q: Q;
    try {
      q = parse();
    } catch (err) {
      if (err instanceof QueryParamError) return sendError(res, 400, err.message, { parameter: err.parameter });
      throw err;
    }
    return answer(q);
  };

  http.route(
    'GET',
    '/v1/aggregates',
    (_req, res) =>
      sendJson(res, 200, {
        aggregations: [...byName.values()].map((a) => ({ name: a.name, window: a.window, types: a.types ?? ['>'] })),
        counters: d.counters,
      }),
    'query',
    {
      summary: 'the aggregations this aggregator runs',
      responses: {
        200: {
          description: 'each aggregation with its window and the event types it takes, and the counters',
          content: { 'application/json': AggregationListSchema },
        },
      },
    },
  );

  http.route(
    'GET',
    '/v1/aggregates/:name',
    (req, res, { name }) => {
      if (!byName.has(name)) return unknown(res, name);
      return withParams(
        res,
        () => parsePageQuery(searchParams(req)),
        async (q) => {
          let page;
          try {
            page = await keyPage(results, name, q);
          } catch (err) {
            return unavailable(res, err);
          }
          sendJson(res, 200, page);
        },
      );
    },
    'query',
    {
      summary: "an aggregation's keys, page by page",
      params: { name: 'the aggregation (totals, ...)' },
      query: {
        prefix: { description: 'only keys starting with this' },
        limit: { description: 'keys per page, 1 to 1000 (default 100)', schema: { type: 'integer', minimum: 1, maximum: 1000 } },
        cursor: { description: 'where the next page starts: `next` of the page before' },
      },
      responses: {
        200: { description: 'keys in order; `next` is null on the last page', content: { 'application/json': KeyPageSchema } },
        404: { description: 'no aggregation of that name (the answer lists the known ones)' },
      },
    },
  );

  http.route(
    'GET',
    '/v1/aggregates/:name/:key',
    (req, res, { name, key }) => {
      if (!byName.has(name)) return unknown(res, name);
      return withParams(
        res,
        () => parseTimeRange(searchParams(req)),
        async (range) => {
          let entry;
          try {
            entry = await results.get(aggregateKvKey(name, key));
          } catch (err) {
            return unavailable(res, err);
          }
          if (!entry || entry.operation !== 'PUT' || entry.length === 0) return sendJson(res, 200, { name, key, windows: [] });
          if (!range) return sendJson(res, 200, entry.json());
          const result = entry.json<WindowResult>();
          sendJson(res, 200, { ...result, windows: result.windows.filter((w) => overlaps(w, range)) });
        },
      );
    },
    'query',
    {
      summary: "a key's windowed results",
      params: { name: 'the aggregation (totals, ...)', key: 'the grouping key (the partition key for totals)' },
      query: {
        from: { description: 'only windows ending after this RFC 3339 time', schema: { type: 'string', format: 'date-time' } },
        to: { description: 'only windows starting before this RFC 3339 time', schema: { type: 'string', format: 'date-time' } },
      },
      responses: {
        200: { description: 'the windows of the key, oldest first (none for a key never seen)', content: { 'application/json': WindowResultSchema } },
        404: { description: 'no aggregation of that name' },
      },
    },
  );

  http.route(
    'GET',
    '/v1/aggregates/:name/:key/events',
    (req, res, { name, key }) => {
      if (!byName.has(name)) return unknown(res, name);
      return withParams(
        res,
        () => parseNoParams(searchParams(req)),
        async () => {
          try {
            await streamResultUpdates(req, res, { js: d.js, results, name, key, heartbeatMs: d.heartbeatMs });
          } catch (err) {
            // Before the stream started (the watch could not be made): an answer can still be sent.
            if (!res.headersSent) return unavailable(res, err);
          }
        },
      );
    },
    'query',
    {
      summary: "a key's result as it changes (Server-Sent Events)",
      description: 'The current result first, then one `data:` line per change, with a comment line as heartbeat (MESH_UPDATES_HEARTBEAT).',
      params: { name: 'the aggregation', key: 'the grouping key' },
      responses: {
        200: { description: 'an event stream of results', content: { 'text/event-stream': { type: 'string' } } },
        404: { description: 'no aggregation of that name' },
      },
    },
  );
}

const WindowSchema = {
  type: 'object',
  required: ['start', 'end', 'closed'],
  properties: { start: { type: 'string', format: 'date-time' }, end: { type: 'string', format: 'date-time' }, closed: { type: 'boolean' } },
  additionalProperties: { description: "the aggregation's fields (count and sum for totals)" },
};
const WindowResultSchema = {
  type: 'object',
  required: ['name', 'key', 'windows'],
  properties: { name: { type: 'string' }, key: { type: 'string' }, windows: { type: 'array', items: WindowSchema } },
};
const KeyPageSchema = {
  type: 'object',
  required: ['name', 'keys', 'next'],
  properties: { name: { type: 'string' }, keys: { type: 'array', items: { type: 'string' } }, next: { type: ['string', 'null'] } },
};
const AggregationListSchema = {
  type: 'object',
  properties: {
    aggregations: {
      type: 'array',
      items: { type: 'object', properties: { name: { type: 'string' }, window: { type: 'object' }, types: { type: 'array', items: { type: 'string' } } } },
    },
    counters: { type: 'object', additionalProperties: { type: 'integer' } },
  },
};
