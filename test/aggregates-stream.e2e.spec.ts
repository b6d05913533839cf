/**
 * The aggregator's outputs, read end to end: what it publishes on
 * MESH_AGGREGATES and what it keeps in KV `mesh_aggregates`.
 *
 * - A window closes when a later event of the same partition moves the
 *   watermark past its end plus the allowed lateness (MESH_ALLOWED_LATENESS
 *   2 s here), not before; its closed result is published once on
 *   `mesh.aggregates.<name>` with its count and sum, and the query shows it
 *   `closed: true`.
 * - An event later than that goes to `mesh.aggregates.late.<name>`, is
 *   counted as late and is not added to its window.
 * - A hopping window aggregation (loaded from a file through
 *   MESH_AGGREGATION_MODULES) puts each event in every window that covers
 *   it, and closes and publishes each of them.
 * - A new owner writes the results of the checkpoint it restores when it
 *   opens a partition: results that diverge from the checkpoint (a crash
 *   between checkpoint and results) are repaired with no new event.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { aggregateKvKey, Buckets, decodeEnvelope, Streams, Subjects, type CloudEvent } from '@mesh/contracts';
import {
  eventually,
  orderEvent,
  postEvents,
  startMesh,
  startNatsServer,
  startService,
  stopAll,
  type NatsServer,
  type ServiceName,
  type ServiceProcess,
} from '@mesh/testing';
import { waitUntilDrained } from './support/mesh-state';

/** The default MESH_PARTITIONS. */
const P = 16;
const LATENESS_MS = 2_000;
const HOP = { name: 'hop', sizeMs: 60_000, hopMs: 20_000 };

interface StreamMessage {
  seq: number;
  subject: string;
  headers: Record<string, string>;
  data: Uint8Array;
}

/** Every message of MESH_AGGREGATES on exactly `subject`, oldest first, read by sequence (creates no consumer). */
async function aggregatesOn(jsm: JetStreamManager, subject: string): Promise<StreamMessage[]> {
  const { state } = await jsm.streams.info(Streams.aggregates);
  const found: StreamMessage[] = [];
  if (state.messages === 0) return found;
  for (let seq = state.first_seq; seq <= state.last_seq; seq++) {
    const m = await jsm.streams.getMessage(Streams.aggregates, { seq });
    if (!m || m.subject !== subject) continue;
    const headers: Record<string, string> = {};
    if (m.header) for (const [k, v] of m.header) headers[k] = v.join(',');
    found.push({ seq: m.seq, subject: m.subject, headers, data: m.data });
  }
  return found;
}

interface ClosedWindow {
  name: string;
  key: string;
  start: string;
  end: string;
  count: number;
  sum: number;
}

async function closedWindows(jsm: JetStreamManager, name: string, key: string): Promise<ClosedWindow[]> {
  return (await aggregatesOn(jsm, Subjects.aggregates(name)))
    .map((m) => JSON.parse(Buffer.from(m.data).toString('utf8')) as ClosedWindow)
    .filter((w) => w.key === key);
}

interface QueriedWindow {
  start: string;
  end: string;
  closed: boolean;
  count: number;
  sum: number;
}

async function windowsOf(aggregatorUrl: string, name: string, key: string): Promise<QueriedWindow[]> {
  const res = await fetch(`${aggregatorUrl}/v1/aggregates/${name}/${encodeURIComponent(key)}`);
  if (res.status !== 200) throw new Error(`GET ${name}/${key} answered ${res.status}: ${await res.text()}`);
  return ((await res.json()) as { windows: QueriedWindow[] }).windows;
}

async function lateCounter(aggregatorUrl: string): Promise<number> {
  const res = await fetch(`${aggregatorUrl}/v1/aggregates`);
  return ((await res.json()) as { counters: { late: number } }).counters.late;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** An order event of `key` at event time `at` (ms). */
function at(key: string, n: number, amount: number, atMs: number): CloudEvent {
  return orderEvent(key, n, amount, { time: iso(atMs) });
}

describe('aggregator outputs: closed windows, late events, hopping windows, results after a handover', () => {
  let server: NatsServer;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  let mesh: Record<ServiceName, ServiceProcess> | undefined;
  let moduleDir: string;

  /** Post in one request and wait until every stage has acked it: the aggregator has applied it, checkpointed and written its results. */
  async function send(events: CloudEvent[]): Promise<void> {
    await postEvents(mesh!.ingest.url, events, 'batch');
    await waitUntilDrained(server.url, P, 60_000);
  }

  beforeAll(async () => {
    moduleDir = mkdtempSync(join(tmpdir(), 'mesh-aggregation-'));
    const hopPath = join(moduleDir, 'hop.aggregation.js');
    writeFileSync(
      hopPath,
      `module.exports = { name: '${HOP.name}', window: { kind: 'hopping', sizeMs: ${HOP.sizeMs}, hopMs: ${HOP.hopMs} },
  init: () => ({ count: 0, sum: 0 }),
  add(acc, event) { acc.count += 1; acc.sum += event.data.amount; return acc; } };\n`,
    );
    server = await startNatsServer();
    nc = await connect({ servers: server.url });
    mesh = await startMesh(server.url, { MESH_ALLOWED_LATENESS: `${LATENESS_MS}ms`, MESH_AGGREGATION_MODULES: hopPath });
    jsm = await jetstreamManager(nc);
  });

  afterAll(async () => {
    if (mesh) await stopAll(Object.values(mesh));
    await nc?.close();
    await server?.stop();
    rmSync(moduleDir, { recursive: true, force: true });
  });

  // Each test uses its own hour of event time, later than the previous
  // test's, so a partition's watermark from an earlier test closes nothing of
  // a later one.
  const T0 = Date.parse('2026-03-01T10:00:00.000Z');

  it('closes a window only once the watermark passes its end plus the lateness, and publishes it once with closed: true in the query', async () => {
    const key = 'close-1';
    await send([at(key, 1, 3, T0 + 10_000), at(key, 2, 4, T0 + 20_000)]);
    // 61 s: the watermark is 59 s, short of the first window's end (60 s).
    await send([at(key, 3, 5, T0 + 61_000)]);
    expect(await windowsOf(mesh!.aggregator.url, 'totals', key)).toEqual([
      { start: iso(T0), end: iso(T0 + 60_000), closed: false, count: 2, sum: 7 },
      { start: iso(T0 + 60_000), end: iso(T0 + 120_000), closed: false, count: 1, sum: 5 },
    ]);
    expect(await closedWindows(jsm, 'totals', key)).toEqual([]);

    // 63 s: the watermark is 61 s, past 60 s: the first window closes.
    await send([at(key, 4, 6, T0 + 63_000)]);
    // More batches of the partition afterwards must not publish it again.
    await send([at(key, 5, 1, T0 + 64_000)]);
    await send([at(key, 6, 1, T0 + 65_000)]);
    expect(await windowsOf(mesh!.aggregator.url, 'totals', key)).toEqual([
      { start: iso(T0), end: iso(T0 + 60_000), closed: true, count: 2, sum: 7 },
      { start: iso(T0 + 60_000), end: iso(T0 + 120_000), closed: false, count: 4, sum: 13 },
    ]);
    expect(await closedWindows(jsm, 'totals', key)).toEqual([{ name: 'totals', key, start: iso(T0), end: iso(T0 + 60_000), count: 2, sum: 7 }]);
  });

  it('sends an event later than the lateness to mesh.aggregates.late.<name>, counts it as late and leaves its window as it was', async () => {
    const key = 'close-1'; // the partition's watermark is 65 s - 2 s = 63 s from the test before
    const lateBefore = await lateCounter(mesh!.aggregator.url);
    const lateMessagesBefore = (await aggregatesOn(jsm, Subjects.aggregatesLate('totals'))).length;
    await send([at(key, 7, 100, T0 + 30_000)]);

    const late = (await aggregatesOn(jsm, Subjects.aggregatesLate('totals'))).slice(lateMessagesBefore);
    expect(late).toHaveLength(1);
    const [event] = decodeEnvelope(late[0].data);
    expect(event).toMatchObject({ type: 'order.validated', partitionkey: key, time: iso(T0 + 30_000), data: { orderId: `${key}-7`, amount: 100 } });
    expect(late[0].headers['Mesh-Late-Watermark']).toBe(iso(T0 + 65_000 - LATENESS_MS));
    expect((await lateCounter(mesh!.aggregator.url)) - lateBefore).toBe(1);
    expect(await windowsOf(mesh!.aggregator.url, 'totals', key)).toEqual([
      { start: iso(T0), end: iso(T0 + 60_000), closed: true, count: 2, sum: 7 },
      { start: iso(T0 + 60_000), end: iso(T0 + 120_000), closed: false, count: 4, sum: 13 },
    ]);
    // Not late for the hopping aggregation: its window [20 s, 80 s) ends after
    // the watermark, so the event is added there (to the 20, 61, 63, 64 and
    // 65 s events: 4 + 5 + 6 + 1 + 1 = 17) and nothing is published late.
    expect(await aggregatesOn(jsm, Subjects.aggregatesLate(HOP.name))).toEqual([]);
    expect((await windowsOf(mesh!.aggregator.url, HOP.name, key)).find((w) => w.start === iso(T0 + 20_000))).toMatchObject({
      closed: false,
      count: 6,
      sum: 117,
    });
  });

  it('publishes each closed window once, also when later windows of its key close after it', async () => {
    const key = 'close-1'; // its second window [60 s, 120 s) is still open, with 4 events (13)
    // 123 s: the watermark is 121 s: the second window closes; the first must not be published again.
    await send([at(key, 8, 2, T0 + 123_000)]);
    expect(await closedWindows(jsm, 'totals', key)).toEqual([
      { name: 'totals', key, start: iso(T0), end: iso(T0 + 60_000), count: 2, sum: 7 },
      { name: 'totals', key, start: iso(T0 + 60_000), end: iso(T0 + 120_000), count: 4, sum: 13 },
    ]);
    expect((await windowsOf(mesh!.aggregator.url, 'totals', key)).map((w) => w.closed)).toEqual([true, true, false]);
  });

  it('puts each event in every hopping window that covers it, and closes and publishes each window once', async () => {
    const T1 = T0 + 3_600_000;
    const key = 'hop-1';
    await send([at(key, 1, 1, T1 + 10_000), at(key, 2, 2, T1 + 30_000), at(key, 3, 4, T1 + 50_000)]);
    const w = (startS: number, count: number, sum: number, closed: boolean) => ({
      start: iso(T1 + startS * 1000),
      end: iso(T1 + startS * 1000 + HOP.sizeMs),
      closed,
      count,
      sum,
    });
    // 10 s is in [-40, 20), [-20, 40), [0, 60); 30 s in [-20, 40), [0, 60), [20, 80); 50 s in [0, 60), [20, 80), [40, 100).
    // The watermark is now 48 s: the two windows that end by then are closed.
    expect(await windowsOf(mesh!.aggregator.url, HOP.name, key)).toEqual([
      w(-40, 1, 1, true),
      w(-20, 2, 3, true),
      w(0, 3, 7, false),
      w(20, 2, 6, false),
      w(40, 1, 4, false),
    ]);
    // 103 s: the watermark is 101 s, past the end of each of those five windows (at most 100 s).
    await send([at(key, 4, 8, T1 + 103_000)]);
    expect(await windowsOf(mesh!.aggregator.url, HOP.name, key)).toEqual([
      w(-40, 1, 1, true),
      w(-20, 2, 3, true),
      w(0, 3, 7, true),
      w(20, 2, 6, true),
      w(40, 1, 4, true),
      w(60, 1, 8, false),
      w(80, 1, 8, false),
      w(100, 1, 8, false),
    ]);
    expect(await closedWindows(jsm, HOP.name, key)).toEqual(
      [w(-40, 1, 1, true), w(-20, 2, 3, true), w(0, 3, 7, true), w(20, 2, 6, true), w(40, 1, 4, true)].map(({ closed: _closed, ...r }) => ({
        name: HOP.name,
        key,
        ...r,
      })),
    );
  });

  it('a new owner writes the checkpointed results when it opens the partition, with no new event of that partition', async () => {
    const T2 = T0 + 2 * 3_600_000;
    const [changed, deleted] = ['idle-1', 'idle-2'];
    await send([at(changed, 1, 5, T2 + 10_000), at(changed, 2, 6, T2 + 20_000), at(deleted, 1, 7, T2 + 30_000)]);
    const checkpointed = {
      [changed]: [{ start: iso(T2), end: iso(T2 + 60_000), closed: false, count: 2, sum: 11 }],
      [deleted]: [{ start: iso(T2), end: iso(T2 + 60_000), closed: false, count: 1, sum: 7 }],
    };
    const query = async () => ({
      [changed]: await windowsOf(mesh!.aggregator.url, 'totals', changed),
      [deleted]: await windowsOf(mesh!.aggregator.url, 'totals', deleted),
    });
    expect(await query()).toEqual(checkpointed);

    // The owner goes (SIGTERM: it releases its partitions), and the results
    // in KV diverge from its checkpoint, as after a crash between the two
    // writes: one key's result is overwritten, another's deleted.
    expect(await mesh!.aggregator.stop()).toBe(0);
    const results = await new Kvm(nc).open(Buckets.aggregates);
    await results.put(
      aggregateKvKey('totals', changed),
      JSON.stringify({ name: 'totals', key: changed, windows: [{ ...checkpointed[changed][0], count: 999, sum: 999 }] }),
    );
    await results.delete(aggregateKvKey('totals', deleted));

    // A new owner of every partition; no event is sent.
    mesh!.aggregator = await startService('aggregator', {
      NATS_URL: server.url,
      MESH_ALLOWED_LATENESS: `${LATENESS_MS}ms`,
      MESH_AGGREGATION_MODULES: join(moduleDir, 'hop.aggregation.js'),
    });
    await eventually(async () => JSON.stringify(await query()) === JSON.stringify(checkpointed), 30_000);
    expect(await query()).toEqual(checkpointed);
  });
});
