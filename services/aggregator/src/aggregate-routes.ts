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
  );
}
