/**
 * The console's HTTP API, which its page calls. Every route but
 * `/api/session` needs an API key with the `admin` scope while keys are on
 * (the default access of a route), so a page without one sees nothing and
 * can change nothing. The page never gets NATS credentials: the console
 * reads and acts on the mesh with its own identity.
 *
 * What it reads and does is what the `mesh` CLI does, through the same code
 * ('@mesh/operations'): dead letters (list, show, redrive), the route table
 * (checked by the router's own rule parser before anything is stored),
 * partitions; plus the live picture (mesh-picture.ts), an aggregation key's
 * windows as they change and a stage's events as they pass.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { DeliverPolicy } from '@nats-io/jetstream';
import type { Subscription } from '@nats-io/nats-core';
import {
  aggregateKvKey,
  Buckets,
  decodeEnvelope,
  kvStream,
  kvSubject,
  Streams,
  Subjects,
  typeMatches,
  typePatternProblem,
  type CloudEvent,
  type DlqStage,
} from '@mesh/contracts';
import {
  dlqFilter,
  DlqStages,
  getDeadLetter,
  InvalidRequestError,
  OperationError,
  oneOf,
  readDeadLetters,
  redriveOne,
  redriveProblem,
  removeRule,
  requireStream,
  routeEntries,
  storeRule,
  summaryJson,
  validateRule,
  type DeadLetterRecord,
  type MeshContext,
  type Redriven,
} from '@mesh/operations';
import { readBody, sendError, sendJson, type HttpApp, type Logger } from '@mesh/runtime';
import { openEventStream } from './event-stream';
import type { MeshPictureSource } from './mesh-picture';

export interface ConsoleApiOptions {
  http: HttpApp;
  ctx: MeshContext;
  picture: MeshPictureSource;
  log: Logger;
  /** Whether API keys are on: the page asks for one then. */
  apiKeys: boolean;
  instance: string;
}

/** Stage outputs a page may tail, as `mesh tail` names them. */
export const TailSubjects: Readonly<Record<string, string>> = {
  ingest: Subjects.ingestAll,
  router: Subjects.routedAll,
  processor: Subjects.processedAll,
  aggregator: Subjects.aggregatesAll,
};

const MaxScanned = 10_000;
const MaxBody = 64 * 1024;
/** Most events a tail sends a page per second; the rest are counted as skipped. */
const TailEventsPerSecond = 200;
const NameToken = /^[A-Za-z0-9_-]{1,128}$/;

type RouteDoc = NonNullable<Parameters<HttpApp['route']>[4]>;

/** What /openapi.json says of a route: a JSON answer, or Server-Sent Events. */
function doc(summary: string, more: Partial<RouteDoc> = {}, events = false): RouteDoc {
  return {
    summary,
    responses: { 200: events ? { description: 'Server-Sent Events', content: { 'text/event-stream': { type: 'string' } } } : { description: 'OK' } },
    ...more,
  };
}

function query(req: IncomingMessage): URLSearchParams {
  return new URL(req.url ?? '/', 'http://console').searchParams;
}

async function jsonBody(req: IncomingMessage): Promise<unknown> {
  const text = (await readBody(req, MaxBody)).toString('utf8');
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new InvalidRequestError(`the request body is not JSON (${(err as Error).message})`);
  }
}

/** Run `fn`; a refused request or a failed operation becomes a clear answer, anything else a 500. */
async function answer(res: ServerResponse, fn: () => Promise<unknown>, status = 200): Promise<void> {
  try {
    sendJson(res, status, await fn());
  } catch (err) {
    if (err instanceof InvalidRequestError) return sendError(res, 400, err.message);
    if (err instanceof OperationError) return sendError(res, 409, err.message);
    if ((err as Error).name === 'BodyTooLargeError') return sendError(res, 413, (err as Error).message);
    throw err;
  }
}

export interface DeadLetterFilter {
  stage?: DlqStage;
  handler?: string;
  kind?: string;
  since?: Date;
  until?: Date;
}

function parseTime(name: string, text: string | null): Date | undefined {
  if (text === null || text === '') return undefined;
  const d = new Date(text);
  if (Number.isNaN(d.getTime()))
    throw new InvalidRequestError(`${name} = ${JSON.stringify(text)} is not a time; give an ISO 8601 time such as 2026-01-31T12:00:00Z`);
  return d;
}

export function parseFilter(get: (name: string) => string | null | undefined): DeadLetterFilter {
  const stage = get('stage') || undefined;
  if (stage !== undefined && !(DlqStages as readonly string[]).includes(stage)) {
    throw new InvalidRequestError(`stage = ${JSON.stringify(stage)} is not a stage that dead-letters; accepted: ${oneOf(DlqStages)}`);
  }
  return {
    stage: stage as DlqStage | undefined,
    handler: get('handler') || undefined,
    kind: get('kind') || undefined,
    since: parseTime('since', get('since') ?? null),
    until: parseTime('until', get('until') ?? null),
  };
}

export function matchesFilter(d: DeadLetterRecord, f: DeadLetterFilter): boolean {
  if (f.handler !== undefined && d.handler !== f.handler) return false;
  if (f.kind !== undefined && d.errorKind !== f.kind) return false;
  if (f.since && d.time < f.since) return false;
  if (f.until && d.time > f.until) return false;
  return true;
}

function whole(name: string, text: string | null, min: number, max: number, fallback: number): number {
  if (text === null || text === '') return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new InvalidRequestError(`${name} = ${JSON.stringify(text)} is invalid; give a whole number from ${min} to ${max}`);
  return n;
}

/** Dead letters matching the filter, oldest first, reading at most MaxScanned (up to `upToSeq` when given). */
async function findDeadLetters(
  ctx: MeshContext,
  f: DeadLetterFilter,
  upToSeq?: number,
): Promise<{ letters: DeadLetterRecord[]; scanned: number; more: boolean }> {
  const { letters, matching } = await readDeadLetters(ctx, { filter: dlqFilter(f.stage), limit: MaxScanned, upToSeq });
  return { letters: letters.filter((d) => matchesFilter(d, f)), scanned: letters.length, more: matching > letters.length };
}

function detail(d: DeadLetterRecord) {
  let text: string | null = null;
  if (!d.events) {
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(d.body);
    } catch {
      text = null;
    }
  }
  return {
    ...summaryJson(d),
    headers: d.headers,
    body: d.events ?? null,
    bodyText: text,
    bodyBase64: d.events ? null : Buffer.from(d.body).toString('base64'),
    redrivable: redriveProblem(d) === undefined,
    redriveProblem: redriveProblem(d) ?? null,
  };
}

function seqList(value: unknown): number[] {
  if (!Array.isArray(value) || value.length === 0 || value.length > MaxScanned || !value.every((v) => Number.isInteger(v) && v > 0)) {
    throw new InvalidRequestError(
      `seqs must be a list of 1 to ${MaxScanned} dead letter sequences (whole numbers above 0); got ${JSON.stringify(value)?.slice(0, 80)}`,
    );
  }
  return [...new Set(value as number[])];
}

export function registerConsoleApi(o: ConsoleApiOptions): { stop(): void } {
  const { http, ctx, picture, log } = o;
  const streams = new Set<{ close(): void }>();

  http.route(
    'GET',
    '/api/session',
    (_req, res) => sendJson(res, 200, { apiKeys: o.apiKeys, instance: o.instance, nats: ctx.natsUrl }),
    'open',
    doc('Whether the console needs an API key (the page asks for one then)'),
  );
  // Checks a key: answers 200 only with an admin key (or when keys are off).
  http.route(
    'GET',
    '/api/whoami',
    (_req, res, _p, caller) => sendJson(res, 200, { key: caller.key?.name ?? null, scopes: caller.key?.scopes ?? null }),
    'admin',
    doc('The key the request came with: answers only an admin key (or anyone while keys are off)'),
  );

  http.route(
    'GET',
    '/api/picture',
    (_req, res) => {
      if (!picture.latest) return sendError(res, 503, 'the console has not read the mesh yet; try again in a second', {}, { 'retry-after': '1' });
      sendJson(res, 200, picture.latest);
    },
    'admin',
    doc('The latest picture of the mesh: services, instances, rates, partitions, moves, dead letters'),
  );
  http.route(
    'GET',
    '/api/picture/events',
    (req, res) => {
      let unsubscribe = () => {};
      const stream = openEventStream(req, res, () => {
        unsubscribe();
        streams.delete(stream);
      });
      streams.add(stream);
      if (picture.latest) stream.send('picture', picture.latest);
      unsubscribe = picture.subscribe((p) => stream.send('picture', p));
    },
    'admin',
    doc('Every new picture of the mesh, as it is read (event `picture`)', {}, true),
  );

  http.route(
    'GET',
    '/api/dead-letters',
    (req, res) =>
      answer(res, async () => {
        const q = query(req);
        const f = parseFilter((n) => q.get(n));
        const limit = whole('limit', q.get('limit'), 1, 1000, 200);
        const { letters, scanned, more } = await findDeadLetters(ctx, f);
        return { deadLetters: letters.slice(0, limit).map(summaryJson), matching: letters.length, scanned, more };
      }),
    'admin',
    doc('Dead letters, oldest first, by stage, handler, error kind and time', {
      query: {
        stage: { description: 'router, processor, aggregator or ingest' },
        handler: { description: 'the handler that failed' },
        kind: { description: 'the error kind' },
        since: { description: 'ISO 8601 time' },
        until: { description: 'ISO 8601 time' },
        limit: { description: '1 to 1000 (default 200)' },
      },
    }),
  );
  http.route(
    'GET',
    '/api/dead-letters/:seq',
    (_req, res, params) =>
      answer(res, async () => {
        const seq = whole('seq', params.seq, 1, Number.MAX_SAFE_INTEGER, 0);
        return detail(await getDeadLetter(ctx, seq));
      }),
    'admin',
    doc('One dead letter: every header, its body, and whether it can be redriven', { params: { seq: 'its sequence in MESH_DLQ' } }),
  );
  // {"seqs": [..]} redrives those; {"all": true, "filter": {...}} every dead letter matching the filter, as MESH_DLQ is now.
  http.route(
    'POST',
    '/api/dead-letters/redrive',
    (req, res) =>
      answer(res, async () => {
        const body = (await jsonBody(req)) as { seqs?: unknown; all?: unknown; filter?: Record<string, string> };
        if (typeof body !== 'object' || body === null) throw new InvalidRequestError('give {"seqs": [sequences]} or {"all": true, "filter": {...}}');
        const redriven: Redriven[] = [];
        const refused: { seq: number; problem: string }[] = [];
        let targets: { seq: number; read: () => Promise<DeadLetterRecord> }[];
        if (body.all === true) {
          const f = parseFilter((n) => body.filter?.[n]);
          const upToSeq = (await requireStream(ctx, Streams.dlq)).state.last_seq;
          targets = (await findDeadLetters(ctx, f, upToSeq)).letters.map((d) => ({ seq: d.seq, read: async () => d }));
        } else {
          targets = seqList(body.seqs).map((seq) => ({ seq, read: () => getDeadLetter(ctx, seq) }));
        }
        // One at a time, in order; one that cannot be redriven is reported and the others go on.
        for (const t of targets) {
          try {
            redriven.push(await redriveOne(ctx, await t.read()));
          } catch (err) {
            if (!(err instanceof OperationError)) throw err;
            refused.push({ seq: t.seq, problem: err.message });
          }
        }
        log.info('redrove dead letters', { redriven: redriven.length, refused: refused.length });
        return { redriven, refused };
      }),
    'admin',
    doc('Redrive dead letters where they failed: {"seqs": [...]}, or {"all": true, "filter": {...}} as MESH_DLQ is now', {
      body: { content: { 'application/json': { type: 'object' } } },
    }),
  );

  http.route(
    'GET',
    '/api/routes',
    (_req, res) => answer(res, async () => ({ routes: await routeEntries(ctx) })),
    'admin',
    doc('The route table: handler defaults and operator rules'),
  );
  // Checks a rule exactly as the router will, storing nothing.
  http.route(
    'POST',
    '/api/routes/check',
    (req, res) =>
      answer(res, async () => {
        const body = (await jsonBody(req)) as { name?: unknown; rule?: unknown };
        const name = typeof body?.name === 'string' ? body.name : '';
        try {
          return { ok: true, rule: validateRule(name, body?.rule) };
        } catch (err) {
          if (err instanceof InvalidRequestError) return { ok: false, problem: err.message };
          throw err;
        }
      }),
    'admin',
    doc('Check a rule as the router would ({"name", "rule"}), storing nothing', { body: { content: { 'application/json': { type: 'object' } } } }),
  );
  http.route(
    'PUT',
    '/api/routes/:name',
    (req, res, params) =>
      answer(res, async () => {
        const stored = await storeRule(ctx, params.name, await jsonBody(req));
        log.info('stored route rule', { rule: params.name, revision: stored.revision });
        return stored;
      }),
    'admin',
    doc('Store a rule (the body) once the router would take it', {
      params: { name: 'the rule' },
      body: { content: { 'application/json': { type: 'object' } } },
    }),
  );
  http.route(
    'DELETE',
    '/api/routes/:name',
    (_req, res, params) =>
      answer(res, async () => {
        const removed = await removeRule(ctx, params.name);
        log.info('removed route rule', { rule: params.name });
        return removed;
      }),
    'admin',
    doc('Delete a rule', { params: { name: 'the rule' } }),
  );

  // An aggregation key's windows: the current result, then every change (a watch of its KV entry).
  http.route(
    'GET',
    '/api/aggregates/:name/:key/events',
    async (req, res, params) => {
      if (!NameToken.test(params.name))
        return sendError(res, 400, `aggregation name ${JSON.stringify(params.name)} is invalid; use letters, digits, '_' or '-'`);
      if (params.key === '' || params.key.length > 1024) return sendError(res, 400, 'the key must be 1 to 1024 characters');
      const kvKey = aggregateKvKey(params.name, params.key);
      const consumer = await ctx.js.consumers.getPushConsumer(kvStream(Buckets.aggregates), {
        filter_subjects: kvSubject(Buckets.aggregates, kvKey),
        deliver_policy: DeliverPolicy.LastPerSubject,
      });
      const messages = await consumer.consume();
      const stream = openEventStream(req, res, () => {
        streams.delete(stream);
        messages.stop();
        // Deleted at once, so a page that comes and goes leaves nothing on the server.
        consumer.delete().catch(() => undefined);
      });
      streams.add(stream);
      stream.send('ready', { name: params.name, key: params.key });
      try {
        for await (const m of messages) {
          if (stream.closed) break;
          let value: unknown = null;
          try {
            value = m.data.length > 0 ? m.json() : null;
          } catch {
            value = null;
          }
          stream.send('result', { revision: m.seq, result: value ?? { name: params.name, key: params.key, windows: [] } });
        }
      } finally {
        if (!stream.closed) stream.close();
      }
    },
    'admin',
    doc("An aggregation key's result, then every change (event `result`)", { params: { name: 'the aggregation', key: 'the key' } }, true),
  );

  // A stage's events as they pass, like `nats sub` (a core subscription: nothing is created on the server).
  http.route(
    'GET',
    '/api/tail',
    (req, res) => {
      const q = query(req);
      const stage = q.get('stage') ?? '';
      const subject = TailSubjects[stage];
      if (!subject) return sendError(res, 400, `stage = ${JSON.stringify(stage)} cannot be tailed; accepted: ${oneOf(Object.keys(TailSubjects))}`);
      const filter = q.get('filter') || undefined;
      const problem = filter === undefined ? undefined : typePatternProblem(filter);
      if (problem) return sendError(res, 400, `filter = ${JSON.stringify(filter)} is not an event type pattern: ${problem}`);
      const stream = openEventStream(req, res, () => {
        streams.delete(stream);
        sub.unsubscribe();
        clearInterval(tick);
      });
      streams.add(stream);
      let budget = TailEventsPerSecond;
      let skipped = 0;
      const tick = setInterval(() => {
        if (skipped > 0) stream.send('skipped', { count: skipped });
        skipped = 0;
        budget = TailEventsPerSecond;
      }, 1_000);
      const send = (data: unknown) => {
        if (budget-- > 0) stream.send('event', data);
        else skipped++;
      };
      stream.send('ready', { subject, filter: filter ?? null });
      const sub: Subscription = ctx.nc.subscribe(subject, {
        callback: (err, m) => {
          if (err) return stream.close();
          let events: CloudEvent[] | undefined;
          try {
            events = decodeEnvelope(m.data);
          } catch {
            events = undefined;
          }
          const at = new Date().toISOString();
          if (!events) {
            if (filter) return;
            let value: unknown = Buffer.from(m.data).toString('utf8');
            try {
              value = JSON.parse(value as string);
            } catch {
              // not JSON: shown as text
            }
            return send({ at, subject: m.subject, value });
          }
          for (const e of events) if (!filter || typeMatches(filter, e.type)) send({ at, subject: m.subject, event: e });
        },
      });
    },
    'admin',
    doc(
      "A stage's output as it passes (events `ready`, `event`, `skipped`)",
      { query: { stage: { description: 'ingest, router, processor or aggregator', required: true }, filter: { description: 'event type pattern' } } },
      true,
    ),
  );

  return {
    stop() {
      for (const s of [...streams]) s.close();
    },
  };
}
