/**
 * MESH_STATE_RETENTION at scale, with the real aggregator worker, window
 * state and checkpoint against a real nats-server: 1,000,000 distinct keys
 * (every tenth with a second event 20 s after its first), event times spread
 * over two hours, a retention of 10 minutes, one partition (the worst case:
 * every key in one state).
 *
 * What it shows, sampled every 10 minutes of event time: the keys held, the
 * checkpoint's size in `mesh_checkpoints` (head plus live chunks, read back
 * from the server) and the heap after a full GC stay flat once the first
 * retention has passed; and the checkpoint, loaded by a new owner, holds
 * every key still in retention with exact totals.
 *
 * The worker's outputs (closed windows on MESH_AGGREGATES, results in
 * `mesh_aggregates`) go to stubs: two million publishes and puts would
 * measure NATS, not the state. Its second test runs the worker with the
 * real outputs and shows a dropped key's final result stays in KV.
 */
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { aggregateKvKey, Buckets, checkpointKey, type CloudEvent } from '@mesh/contracts';
import { provisionMesh } from '@mesh/messaging';
import type { InputEnvelope } from '@mesh/runtime';
import { startNatsServer, type NatsServer } from '@mesh/testing';
import { aggregatorWorker, loadWindows, type AggregatorCounters } from './aggregator-worker';
import totals from './aggregations/totals.aggregation';
import { PartitionWindows } from './window-state';

const MINUTE = 60_000;
const T0 = Date.parse('2026-03-02T00:00:00.000Z');
const KEYS = 1_000_000;
const SPAN = 120 * MINUTE;
/** Key i's first event; every tenth key has a second one 20 s later (in the next window when the first was late in its minute). */
const firstAt = (i: number) => T0 + Math.floor((i * SPAN) / KEYS);
const SECOND_AFTER = 20_000;
const hasSecond = (i: number) => i % 10 === 0;
const LATENESS = MINUTE;
const RETENTION = 10 * MINUTE;
/** Events per handle() call, as one commit of the worker. */
const PER_COMMIT = 50_000;
const amountOf = (i: number, second: boolean) => (second ? (i % 89) + 1 : (i % 97) + 1);

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function event(i: number, second: boolean): CloudEvent {
  const key = `device-${i}`;
  return {
    specversion: '1.0', id: `${key}-${second ? 2 : 1}`, source: 'retention-test', type: 'reading.taken', partitionkey: key,
    time: new Date(firstAt(i) + (second ? SECOND_AFTER : 0)).toISOString(), data: { amount: amountOf(i, second) },
  };
}

/** Every event in event-time order: key i's first event merged with the second events of earlier keys. */
function* events(): Generator<CloudEvent> {
  let second = 0;
  const nextSecond = () => {
    while (second < KEYS && !hasSecond(second)) second++;
  };
  nextSecond();
  for (let i = 0; i < KEYS; i++) {
    for (; second < i && firstAt(second) + SECOND_AFTER <= firstAt(i); second++, nextSecond()) yield event(second, true);
    yield event(i, false);
  }
  for (; second < KEYS; second++, nextSecond()) yield event(second, true);
}

/** Bytes of the partition's checkpoint as stored: the head and, when chunked, each live chunk. */
async function checkpointBytes(kv: KV, partition: number): Promise<number> {
  const head = await kv.get(checkpointKey('aggregator', partition));
  if (!head) return 0;
  let bytes = head.length;
  const saved = head.json<{ v: number; chunks?: [number, number][] }>();
  if (saved.v !== 2) return bytes;
  await Promise.all(saved.chunks!.map(async ([slot], c) => {
    if (slot === -1) return;
    const chunk = await kv.get(`${checkpointKey('aggregator', partition)}.c${String(c).padStart(2, '0')}.${slot}`);
    bytes += chunk?.length ?? 0;
  }));
  return bytes;
}

describe('state retention with the aggregator worker against a real nats-server', () => {
  let server: NatsServer;
  let nc: NatsConnection;

  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connect({ servers: server.url });
    await provisionMesh(nc, { partitions: 16 });
  });
  afterAll(async () => {
    await nc?.close();
    await server?.stop();
  });

  it('holds 1,000,000 keys over two hours with 10 minutes of retention in flat memory and a flat checkpoint, exact for every key in retention', async () => {
    const kvm = new Kvm(nc);
    const checkpoints = await kvm.open(Buckets.checkpoints);
    const create = () => new PartitionWindows([totals], { defaultLatenessMs: LATENESS, retainClosed: 60, retentionMs: RETENTION });
    const published = { count: 0 };
    // Outputs the test does not measure: accepted at once.
    const js = { publish: async () => (published.count++, { seq: published.count, duplicate: false, stream: 'MESH_AGGREGATES' }) } as unknown as JetStreamClient;
    const results = { put: async () => 1 } as unknown as KV;
    const { windows, checkpoint } = await loadWindows(checkpoints, results, 0, create);
    const counters: AggregatorCounters = { applied: 0, skipped: 0, late: 0, closed: 0 };
    const worker = aggregatorWorker({ js, partition: 0, results, windows, checkpoint, counters });

    const samples: { minute: number; keys: number; checkpointBytes: number; heapMB: number; rssMB: number }[] = [];
    const started = Date.now();
    let seq = 0;
    let pending: CloudEvent[] = [];
    let nextSample = T0 + 10 * MINUTE;
    const commit = async () => {
      // One envelope per 1,000 events, as batch envelopes carry them.
      const batch: InputEnvelope[] = [];
      for (let i = 0; i < pending.length; i += 1_000) {
        const evs = pending.slice(i, i + 1_000);
        batch.push({ seq: ++seq, subject: 'mesh.processed.0.reading.taken', timestampMs: Date.parse(evs[0].time!), deliveryCount: 1, redriven: false, events: evs, data: new Uint8Array() });
      }
      pending = [];
      await worker.handle(batch);
    };
    for (const e of events()) {
      pending.push(e);
      if (pending.length < PER_COMMIT) continue;
      const last = Date.parse(e.time!);
      await commit();
      if (last >= nextSample) {
        gc();
        const m = process.memoryUsage();
        samples.push({ minute: Math.round((last - T0) / MINUTE), keys: windows.keyCount(), checkpointBytes: await checkpointBytes(checkpoints, 0), heapMB: m.heapUsed / 2 ** 20, rssMB: m.rss / 2 ** 20 });
        nextSample += 10 * MINUTE;
      }
    }
    await commit();
    const seconds = (Date.now() - started) / 1000;

    // Keys a state may hold: those whose last window ended within the
    // retention (plus one sweep step, a sixteenth of it) before the watermark,
    // the watermark being the lateness behind the newest event; a key's last
    // window ends at most 20 s + one window after its first event; and one
    // commit's worth of keys arrive between two sweeps.
    const rate = KEYS / SPAN;
    const commitSpan = PER_COMMIT / rate;
    const boundKeys = Math.ceil((RETENTION + RETENTION / 16 + LATENESS + SECOND_AFTER + MINUTE + commitSpan) * rate);
    const steady = samples.filter((s) => s.minute >= 20);
    const maxOf = (f: (s: (typeof samples)[number]) => number) => Math.max(...steady.map(f));
    const minOf = (f: (s: (typeof samples)[number]) => number) => Math.min(...steady.map(f));
    console.log([
      `state retention: ${KEYS.toLocaleString('en')} keys, ${counters.applied.toLocaleString('en')} events over ${SPAN / MINUTE} min of event time, retention ${RETENTION / MINUTE} min, lateness ${LATENESS / 1000} s, one partition, ${seconds.toFixed(1)} s`,
      `bound on keys held: ${boundKeys.toLocaleString('en')} ((retention + retention/16 + lateness + 20 s + one window + one commit) x ${Math.round(rate * MINUTE)} keys/min)`,
      'minute    keys held   checkpoint bytes   heap MB (after GC)   rss MB',
      ...samples.map((s) => `${String(s.minute).padStart(6)} ${String(s.keys).padStart(12)} ${String(s.checkpointBytes).padStart(18)} ${s.heapMB.toFixed(1).padStart(20)} ${s.rssMB.toFixed(0).padStart(8)}`),
      `from minute 20: keys ${minOf((s) => s.keys)}..${maxOf((s) => s.keys)}, checkpoint ${minOf((s) => s.checkpointBytes)}..${maxOf((s) => s.checkpointBytes)} bytes, heap ${minOf((s) => s.heapMB).toFixed(1)}..${maxOf((s) => s.heapMB).toFixed(1)} MB`,
    ].join('\n'));

    expect(counters).toMatchObject({ applied: KEYS + KEYS / 10, late: 0, skipped: 0 });
    expect(samples.length).toBeGreaterThanOrEqual(11);
    expect(maxOf((s) => s.keys)).toBeLessThanOrEqual(boundKeys);
    // Flat: after the first retention, the largest sample is within 15% of the smallest (a state that kept every key would grow sixfold from minute 20 to 120).
    expect(maxOf((s) => s.keys)).toBeLessThanOrEqual(1.15 * minOf((s) => s.keys));
    expect(maxOf((s) => s.checkpointBytes)).toBeLessThanOrEqual(1.15 * minOf((s) => s.checkpointBytes));
    expect(maxOf((s) => s.checkpointBytes)).toBeLessThanOrEqual(boundKeys * 80);
    expect(maxOf((s) => s.heapMB)).toBeLessThanOrEqual(1.5 * minOf((s) => s.heapMB));

    // A new owner loads the checkpoint: every key whose last window ended
    // within the retention of the final watermark is there, with its exact totals.
    const restored = create();
    await loadWindows(checkpoints, results, 0, () => restored);
    const kept = restored.snapshot().aggregations.totals.keys;
    const watermark = firstAt(KEYS - 1) + SECOND_AFTER - LATENESS;
    let inRetention = 0;
    for (let i = KEYS - 1; i >= 0; i--) {
      const lastEnd = Math.floor((firstAt(i) + (hasSecond(i) ? SECOND_AFTER : 0)) / MINUTE) * MINUTE + MINUTE;
      if (lastEnd < watermark - RETENTION) break;
      inRetention++;
      const cells = kept[`device-${i}`];
      if (!cells) throw new Error(`device-${i} (last window ended ${new Date(lastEnd).toISOString()}, watermark ${new Date(watermark).toISOString()}) is missing`);
      const total = cells.reduce((t, [, , , acc]) => ({ count: t.count + (acc.count as number), sum: t.sum + (acc.sum as number) }), { count: 0, sum: 0 });
      expect(total).toEqual(hasSecond(i) ? { count: 2, sum: amountOf(i, false) + amountOf(i, true) } : { count: 1, sum: amountOf(i, false) });
    }
    expect(inRetention).toBeGreaterThan(RETENTION * rate * 0.9);
    expect(Object.keys(kept).length).toBeLessThanOrEqual(boundKeys);
  }, 180_000);

  it('drops a key past retention from the checkpoint and keeps its final result in mesh_aggregates', async () => {
    const kvm = new Kvm(nc);
    const results = await kvm.open(Buckets.aggregates);
    const checkpoints = await kvm.open(Buckets.checkpoints);
    const create = () => new PartitionWindows([totals], { defaultLatenessMs: LATENESS, retainClosed: 60, retentionMs: RETENTION });
    const { windows, checkpoint } = await loadWindows(checkpoints, results, 5, create);
    const counters: AggregatorCounters = { applied: 0, skipped: 0, late: 0, closed: 0 };
    const worker = aggregatorWorker({ js: jetstream(nc), partition: 5, results, windows, checkpoint, counters });
    const at = (key: string, seq: number, offsetMs: number, amount: number): InputEnvelope => {
      const evs = [{ ...event(seq, false), id: `r-${seq}`, partitionkey: key, time: new Date(T0 + offsetMs).toISOString(), data: { amount } }];
      return { seq, subject: 'mesh.processed.5.reading.taken', timestampMs: T0 + offsetMs, deliveryCount: 1, redriven: false, events: evs, data: new Uint8Array() };
    };
    await worker.handle([at('short-lived', 1, 10_000, 4), at('short-lived', 2, 20_000, 5)]);
    // 12 minutes later (watermark 11 min): its window [0, 1m) closed and its result went out closed.
    await worker.handle([at('busy', 3, 12 * MINUTE, 1)]);
    // Another minute: past retention; the sweep drops it.
    await worker.handle([at('busy', 4, 13 * MINUTE, 1)]);
    const reopened = create();
    await loadWindows(checkpoints, results, 5, () => reopened);
    expect(Object.keys(reopened.snapshot().aggregations.totals.keys)).toEqual(['busy']);
    const entry = await results.get(aggregateKvKey('totals', 'short-lived'));
    expect(entry!.json()).toEqual({
      name: 'totals', key: 'short-lived',
      windows: [{ start: new Date(T0).toISOString(), end: new Date(T0 + MINUTE).toISOString(), closed: true, count: 2, sum: 9 }],
    });
  });
});
