/**
 * The aggregator's queries and session windows with real processes: a real
 * nats-server, the four services from their built `dist/main.js`, a session
 * aggregation `visits` loaded from a file through MESH_AGGREGATION_MODULES.
 *
 * - Sessions: a key's events closer than the 30 s gap are one session; a
 *   late event between two sessions merges them; the merged session closes
 *   once the watermark passes its end, goes out once on
 *   `mesh.aggregates.visits`, and the query shows it `closed: true`.
 * - `GET /v1/aggregates/:name?prefix=&limit=&cursor=` pages through keys in
 *   order, each once; bad parameters get 400 naming the parameter.
 * - `?from=&to=` keeps only the windows that share time with the range.
 * - `GET /v1/aggregates/:name/:key/events` (Server-Sent Events, read by a
 *   real HTTP client) delivers the result within 100 ms of the aggregator
 *   writing it to KV, sends heartbeat comments, and stops its KV watch when
 *   the client goes away.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { get, type ClientRequest, type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { aggregateKvKey, Buckets, kvStream, Streams, Subjects, type CloudEvent } from '@mesh/contracts';
import { eventually, orderEvent, postEvents, startMesh, startNatsServer, stopAll, type NatsServer, type ServiceName, type ServiceProcess } from '@mesh/testing';
import { undrainedConsumers, waitUntilDrained } from './support/mesh-state';

const P = 16;
const GAP_MS = 30_000;
const HEARTBEAT_MS = 300;
const T0 = Date.parse('2026-04-01T08:00:00.000Z');
const iso = (ms: number) => new Date(ms).toISOString();

/** An order event of `key` at `offsetMs` after T0 (its amount becomes the validated event's). */
function at(key: string, n: number, amount: number, offsetMs: number): CloudEvent {
  return orderEvent(key, n, amount, { time: iso(T0 + offsetMs) });
}

interface QueriedWindow {
  start: string;
  end: string;
  closed: boolean;
  count: number;
  sum: number;
}

/** One message of the stream per closed window: what MESH_AGGREGATES holds on `subject`. */
async function published(jsm: JetStreamManager, subject: string): Promise<Record<string, unknown>[]> {
  const { state } = await jsm.streams.info(Streams.aggregates);
  const found: Record<string, unknown>[] = [];
  for (let seq = state.first_seq; state.messages > 0 && seq <= state.last_seq; seq++) {
    const m = await jsm.streams.getMessage(Streams.aggregates, { seq });
    if (m && m.subject === subject) found.push(JSON.parse(Buffer.from(m.data).toString('utf8')) as Record<string, unknown>);
  }
  return found;
}

/** A Server-Sent Events client on node:http: every event with its arrival time, every comment line. */
interface EventStream {
  response: IncomingMessage;
  events: { id: string; event: string; data: string; at: number }[];
  comments: string[];
  close(): void;
}

function openEventStream(url: string): Promise<EventStream> {
  return new Promise((resolve, reject) => {
    const stream: Partial<EventStream> & { events: EventStream['events']; comments: string[] } = { events: [], comments: [] };
    const req: ClientRequest = get(url, (res) => {
      let buffer = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const fields: Record<string, string> = {};
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) stream.comments.push(line.slice(1).trim());
            else {
              const i = line.indexOf(':');
              fields[line.slice(0, i)] = line.slice(i + 1).replace(/^ /, '');
            }
          }
          if (fields.data !== undefined) stream.events.push({ id: fields.id, event: fields.event, data: fields.data, at: performance.now() });
        }
      });
      resolve({ ...stream, response: res, close: () => req.destroy() } as EventStream);
    });
    req.on('error', reject);
  });
}

describe('aggregate queries and session windows with real processes', () => {
  let server: NatsServer;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  let results: KV;
  let mesh: Record<ServiceName, ServiceProcess> | undefined;
  let moduleDir: string;
  let url: string;

  /** Post in one request and wait until every stage has acked it (the aggregator has written its results). */
  async function send(events: CloudEvent[]): Promise<void> {
    await postEvents(mesh!.ingest.url, events, 'batch');
    if (!(await waitUntilDrained(server.url, P, 60_000))) throw new Error(`not drained: ${(await undrainedConsumers(server.url, P)).join('; ')}`);
  }

  async function query(path: string): Promise<{ status: number; body: Record<string, unknown> }> {
    const res = await fetch(`${url}${path}`);
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }

  async function windowsOf(name: string, key: string, range = ''): Promise<QueriedWindow[]> {
    const { status, body } = await query(`/v1/aggregates/${name}/${encodeURIComponent(key)}${range}`);
    if (status !== 200) throw new Error(`GET ${name}/${key}${range} answered ${status}: ${JSON.stringify(body)}`);
    return body.windows as QueriedWindow[];
  }

  beforeAll(async () => {
    moduleDir = mkdtempSync(join(tmpdir(), 'mesh-sessions-'));
    const visits = join(moduleDir, 'visits.aggregation.js');
    writeFileSync(
      visits,
      `module.exports = {
  name: 'visits',
  types: ['order.validated'],
  window: { kind: 'session', gapMs: ${GAP_MS} },
  allowedLatenessMs: 60000,
  init: () => ({ count: 0, sum: 0 }),
  add(acc, event) { acc.count += 1; acc.sum += event.data.amount; return acc; },
  merge(a, b) { a.count += b.count; a.sum += b.sum; return a; },
};\n`,
    );
    server = await startNatsServer();
    nc = await connect({ servers: server.url });
    jsm = await jetstreamManager(nc);
    mesh = await startMesh(server.url, { MESH_AGGREGATION_MODULES: visits, MESH_UPDATES_HEARTBEAT: `${HEARTBEAT_MS}ms` });
    url = mesh.aggregator.url;
    results = await new Kvm(nc).open(Buckets.aggregates);
  }, 90_000);
  afterAll(async () => {
    if (mesh) await stopAll(Object.values(mesh));
    await nc?.close();
    await server?.stop();
    if (moduleDir) rmSync(moduleDir, { recursive: true, force: true });
  }, 60_000);

  it("merges a key's events into sessions, merges two sessions a late event bridges, and publishes the closed session once", async () => {
    const key = 'visitor-1';
    const session = (fromS: number, toS: number, closed: boolean, count: number, sum: number) => ({
      start: iso(T0 + fromS * 1000),
      end: iso(T0 + toS * 1000),
      closed,
      count,
      sum,
    });
    // 0 s and 10 s are one session (until 40 s); 50 s is 40 s after 10 s: a second one.
    await send([at(key, 1, 1, 0), at(key, 2, 2, 10_000), at(key, 3, 4, 50_000)]);
    expect(await windowsOf('visits', key)).toEqual([session(0, 40, false, 2, 3), session(50, 80, false, 1, 4)]);
    // 30 s is within the gap of 10 s and of 50 s: the two sessions become one.
    await send([at(key, 4, 8, 30_000)]);
    expect(await windowsOf('visits', key)).toEqual([session(0, 80, false, 4, 15)]);
    // 300 s moves the watermark (300 s - 60 s of lateness) past 80 s: the session closes.
    await send([at(key, 5, 16, 300_000)]);
    expect(await windowsOf('visits', key)).toEqual([session(0, 80, true, 4, 15), session(300, 330, false, 1, 16)]);
    // Within the gap of the closed session: late, it changes nothing.
    await send([at(key, 6, 32, 70_000)]);
    expect(await windowsOf('visits', key)).toEqual([session(0, 80, true, 4, 15), session(300, 330, false, 1, 16)]);
    expect(await published(jsm, Subjects.aggregates('visits'))).toEqual([{ name: 'visits', key, start: iso(T0), end: iso(T0 + 80_000), count: 4, sum: 15 }]);
  }, 120_000);

  it("lists an aggregation's keys page by page, in order and each once, with a prefix", async () => {
    const keys = Array.from({ length: 25 }, (_, i) => `shop/${String(i).padStart(2, '0')}`);
    await send([...keys.map((k, i) => at(k, 1, i + 1, 600_000)), at('other-1', 1, 1, 600_000), at('shop', 1, 1, 600_000)]);
    const seen: string[] = [];
    let cursor: string | null = '';
    let pages = 0;
    while (cursor !== null && pages < 10) {
      const { status, body } = await query(`/v1/aggregates/totals?prefix=${encodeURIComponent('shop/')}&limit=10${cursor ? `&cursor=${cursor}` : ''}`);
      expect(status).toBe(200);
      expect((body.keys as string[]).length).toBeLessThanOrEqual(10);
      seen.push(...(body.keys as string[]));
      cursor = body.next as string | null;
      pages++;
    }
    expect(pages).toBe(3);
    expect(seen).toEqual(keys);
    // Without a prefix the other keys are there too, and a default page holds them all.
    const all = await query('/v1/aggregates/totals');
    expect(all.body.keys).toEqual(expect.arrayContaining([...keys, 'other-1', 'shop']));
    expect(all.body.next).toBeNull();
  }, 120_000);

  it.each([
    ['limit=0', 'limit', /limit "0" is not accepted: give a whole number from 1 to 1000/],
    ['limit=1001', 'limit', /limit "1001" is not accepted/],
    ['limit=ten', 'limit', /limit "ten" is not accepted/],
    ['cursor=not-a-cursor', 'cursor', /cursor "not-a-cursor" is not accepted: give the 'next' of a previous page/],
    ['limt=5', 'limt', /unknown query parameter 'limt'; accepted: prefix, limit, cursor/],
  ])('answers 400 to ?%s, naming the parameter', async (params, parameter, message) => {
    const { status, body } = await query(`/v1/aggregates/totals?${params}`);
    expect(status).toBe(400);
    expect(body.parameter).toBe(parameter);
    expect(body.error).toMatch(message);
  });

  it('answers 404 for the keys of an unknown aggregation, naming the known ones', async () => {
    const { status, body } = await query('/v1/aggregates/nope?limit=5');
    expect(status).toBe(404);
    expect(body.error).toBe("unknown aggregation 'nope'; known aggregations: totals, visits");
  });

  it("limits a key's windows to those sharing time with ?from=&to=", async () => {
    const key = 'ranged';
    await send([at(key, 1, 1, 3_600_000), at(key, 2, 2, 3_660_000), at(key, 3, 4, 3_720_000)]);
    const minute = (m: number) => iso(T0 + 3_600_000 + m * 60_000);
    expect((await windowsOf('totals', key)).map((w) => w.start)).toEqual([minute(0), minute(1), minute(2)]);
    // [0:30, 1:30) touches the first two minutes; a range ending where a window starts leaves it out.
    expect((await windowsOf('totals', key, `?from=${minute(0.5)}&to=${minute(1.5)}`)).map((w) => [w.start, w.sum])).toEqual([
      [minute(0), 1],
      [minute(1), 2],
    ]);
    expect((await windowsOf('totals', key, `?from=${minute(1)}&to=${minute(2)}`)).map((w) => w.start)).toEqual([minute(1)]);
    expect((await windowsOf('totals', key, `?from=${minute(2)}`)).map((w) => w.start)).toEqual([minute(2)]);
    expect((await windowsOf('totals', key, `?to=${minute(1)}`)).map((w) => w.start)).toEqual([minute(0)]);
    const bad = await query(`/v1/aggregates/totals/${key}?from=yesterday`);
    expect(bad).toEqual({
      status: 400,
      body: {
        type: 'about:blank',
        title: 'Bad Request',
        status: 400,
        parameter: 'from',
        detail: 'from "yesterday" is not accepted: give an RFC 3339 time such as "2026-01-31T12:00:00Z"',
        error: 'from "yesterday" is not accepted: give an RFC 3339 time such as "2026-01-31T12:00:00Z"',
      },
    });
    const reversed = await query(`/v1/aggregates/totals/${key}?from=${minute(2)}&to=${minute(1)}`);
    expect(reversed.status).toBe(400);
    expect(reversed.body.parameter).toBe('from');
  }, 120_000);

  it("streams a key's result as Server-Sent Events within 100 ms of its change in KV, with heartbeats, and stops its watch when the client goes away", async () => {
    const key = 'live-1';
    const kvKey = aggregateKvKey('totals', key);
    // The test's own watch sees when the aggregator writes the result.
    const changes: { revision: number; at: number }[] = [];
    const watch = await results.watch({ key: kvKey });
    void (async () => {
      for await (const e of watch) changes.push({ revision: e.revision, at: performance.now() });
    })();
    const consumersBefore = (await jsm.streams.info(kvStream(Buckets.aggregates))).state.consumer_count;

    const stream = await openEventStream(`${url}/v1/aggregates/totals/${key}/events`);
    expect(stream.response.statusCode).toBe(200);
    expect(stream.response.headers['content-type']).toBe('text/event-stream');
    // First the result as it is: none yet.
    expect(await eventually(async () => stream.events.length === 1, 5_000, 10)).toBe(true);
    expect(JSON.parse(stream.events[0].data)).toEqual({ name: 'totals', key, windows: [] });
    expect((await jsm.streams.info(kvStream(Buckets.aggregates))).state.consumer_count).toBe(consumersBefore + 1);

    for (const [n, amount] of [
      [1, 5],
      [2, 7],
    ] as const) {
      await send([at(key, n, amount, 7_200_000)]);
      expect(await eventually(async () => stream.events.length === n + 1 && changes.length === n, 5_000, 10)).toBe(true);
      const update = stream.events[n];
      const change = changes[n - 1];
      expect(update).toMatchObject({ event: 'result', id: String(change.revision) });
      expect(JSON.parse(update.data)).toEqual({
        name: 'totals',
        key,
        windows: [{ start: iso(T0 + 7_200_000), end: iso(T0 + 7_260_000), closed: false, count: n, sum: n === 1 ? 5 : 12 }],
      });
      console.log(`update ${n}: KV revision ${change.revision}, SSE event ${(update.at - change.at).toFixed(1)} ms after the test's own KV watch saw it`);
      expect(update.at - change.at).toBeLessThan(100);
    }
    // Quiet for a while: heartbeat comments keep the stream alive.
    const heartbeats = stream.comments.filter((c) => c === 'heartbeat').length;
    expect(await eventually(async () => stream.comments.filter((c) => c === 'heartbeat').length >= heartbeats + 2, 5_000, 50)).toBe(true);

    // The client goes away: the aggregator stops the watch (its consumer on the bucket's stream goes).
    stream.close();
    expect(await eventually(async () => (await jsm.streams.info(kvStream(Buckets.aggregates))).state.consumer_count === consumersBefore, 10_000, 100)).toBe(
      true,
    );
    watch.stop();
  }, 120_000);

  it('answers 404 to the events of an unknown aggregation and 400 to a parameter, before any stream starts', async () => {
    expect(await query('/v1/aggregates/nope/k/events')).toMatchObject({ status: 404 });
    expect(await query('/v1/aggregates/totals/k/events?from=2026-01-01T00:00:00Z')).toEqual({
      status: 400,
      body: {
        type: 'about:blank',
        title: 'Bad Request',
        status: 400,
        parameter: 'from',
        detail: "unknown query parameter 'from'; this route takes none",
        error: "unknown query parameter 'from'; this route takes none",
      },
    });
  });
});
