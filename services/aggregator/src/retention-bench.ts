/**
 * State retention measured: the real aggregator worker, window state and
 * checkpoint, fed `--keys` distinct keys (every tenth with a second event
 * 20 s after its first) with event times spread over `--span`, with
 * `--retention` of MESH_STATE_RETENTION, one partition (the worst case:
 * every key in one state). Every 10 minutes of event time it samples the
 * keys held, the checkpoint's stored size (head plus live chunks, read back
 * from the server), the heap after a full GC and the RSS; at the end a new
 * owner loads the checkpoint and every key still in retention is checked
 * for exact totals.
 *
 * The worker's outputs (closed windows on MESH_AGGREGATES, results in
 * `mesh_aggregates`) go to stubs: a million publishes and puts would measure
 * NATS, not the state. Checkpoints go to a bucket of its own,
 * `mesh_bench_checkpoints`, so a live mesh on the same server is not touched.
 *
 *   node services/aggregator/dist/retention-bench.js --nats nats://127.0.0.1:4333 [--keys 1000000] [--span 2h] [--retention 10m]
 *
 * It prints a table on stderr and the report as JSON on stdout
 * (`state-retention.int.spec.ts` runs it and checks the report).
 */
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { jetstreamManager, type JetStreamClient } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import { checkpointKey, kvStream, type CloudEvent } from '@mesh/contracts';
import { parseDuration } from '@mesh/config';
import { PartitionWindows, type InputEnvelope } from '@mesh/runtime';
import { aggregatorWorker, loadWindows, type AggregatorCounters } from './aggregator-worker';
import totals from './aggregations/totals.aggregation';

const MINUTE = 60_000;
const T0 = Date.parse('2026-03-02T00:00:00.000Z');
const SECOND_AFTER = 20_000;
export const BenchBucket = 'mesh_bench_checkpoints';

export interface RetentionBenchOptions {
  natsUrl: string;
  keys: number;
  spanMs: number;
  retentionMs: number;
  latenessMs: number;
  /** Events per handle() call, as one commit of the worker. */
  perCommit: number;
}

export interface RetentionSample {
  minute: number;
  keys: number;
  checkpointBytes: number;
  heapMB: number;
  rssMB: number;
}

export interface RetentionReport {
  options: Omit<RetentionBenchOptions, 'natsUrl'>;
  seconds: number;
  applied: number;
  late: number;
  /** Keys a state may hold (see boundOfKeys). */
  boundKeys: number;
  samples: RetentionSample[];
  peakRssMB: number;
  /** Keys whose last window ended within the retention of the final watermark: each must be restored with exact totals. */
  inRetention: number;
  restoredKeys: number;
  wrong: string[];
}

const hasSecond = (i: number) => i % 10 === 0;
const amountOf = (i: number, second: boolean) => (second ? (i % 89) + 1 : (i % 97) + 1);

/**
 * Keys whose last window ended within the retention plus one sweep step (a
 * sixteenth of it) before the watermark, the watermark the lateness behind
 * the newest event; a key's last window ends at most 20 s plus one window
 * after its first event; and one commit's worth of keys arrive between two
 * sweeps.
 */
export function boundOfKeys(o: Omit<RetentionBenchOptions, 'natsUrl'>): number {
  const rate = o.keys / o.spanMs;
  return Math.ceil((o.retentionMs + o.retentionMs / 16 + o.latenessMs + SECOND_AFTER + MINUTE + o.perCommit / rate) * rate);
}

function fullGc(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

/** Bytes of the partition's checkpoint as stored: the head and, when chunked, each live chunk. */
async function checkpointBytes(kv: KV, partition: number): Promise<number> {
  const head = await kv.get(checkpointKey('aggregator', partition));
  if (!head) return 0;
  let bytes = head.length;
  const saved = head.json<{ v: number; chunks?: [number, number][] }>();
  if (saved.v !== 2) return bytes;
  await Promise.all(
    saved.chunks!.map(async ([slot], c) => {
      if (slot === -1) return;
      const chunk = await kv.get(`${checkpointKey('aggregator', partition)}.c${String(c).padStart(2, '0')}.${slot}`);
      bytes += chunk?.length ?? 0;
    }),
  );
  return bytes;
}

export async function runRetentionBench(options: RetentionBenchOptions): Promise<RetentionReport> {
  const { natsUrl, ...o } = options;
  const gc = fullGc();
  const firstAt = (i: number) => T0 + Math.floor((i * o.spanMs) / o.keys);
  const event = (i: number, second: boolean): CloudEvent => {
    const key = `device-${i}`;
    return {
      specversion: '1.0',
      id: `${key}-${second ? 2 : 1}`,
      source: 'retention-bench',
      type: 'reading.taken',
      partitionkey: key,
      time: new Date(firstAt(i) + (second ? SECOND_AFTER : 0)).toISOString(),
      data: { amount: amountOf(i, second) },
    };
  };
  /** Every event in event-time order: key i's first event merged with the second events of earlier keys. */
  function* events(): Generator<CloudEvent> {
    let second = 0;
    const skip = () => {
      while (second < o.keys && !hasSecond(second)) second++;
    };
    skip();
    for (let i = 0; i < o.keys; i++) {
      for (; second < i && firstAt(second) + SECOND_AFTER <= firstAt(i); second++, skip()) yield event(second, true);
      yield event(i, false);
    }
    for (; second < o.keys; second++, skip()) yield event(second, true);
  }

  const nc = await connect({ servers: natsUrl });
  try {
    const kvm = new Kvm(nc);
    const jsm = await jetstreamManager(nc);
    const dropBucket = () => jsm.streams.delete(kvStream(BenchBucket)).catch(() => false);
    // A bucket of its own, emptied: the run starts from no checkpoint.
    await dropBucket();
    const checkpoints = await kvm.create(BenchBucket, { history: 1 });
    const create = () => new PartitionWindows([totals], { defaultLatenessMs: o.latenessMs, retainClosed: 60, retentionMs: o.retentionMs });
    let published = 0;
    // The outputs not measured: accepted at once.
    const js = { publish: async () => ({ seq: ++published, duplicate: false, stream: 'MESH_AGGREGATES' }) } as unknown as JetStreamClient;
    const results = { put: async () => 1 } as unknown as KV;
    const { windows, checkpoint } = await loadWindows(checkpoints, results, 0, create);
    const counters: AggregatorCounters = { applied: 0, skipped: 0, late: 0, closed: 0 };
    const worker = aggregatorWorker({ js, partition: 0, results, windows, checkpoint, counters });

    const samples: RetentionSample[] = [];
    let peakRss = 0;
    const started = Date.now();
    let seq = 0;
    let pending: CloudEvent[] = [];
    let nextSample = T0 + 10 * MINUTE;
    const commit = async () => {
      // One envelope per 1,000 events, as batch envelopes carry them.
      const batch: InputEnvelope[] = [];
      for (let i = 0; i < pending.length; i += 1_000) {
        const evs = pending.slice(i, i + 1_000);
        batch.push({
          seq: ++seq,
          subject: 'mesh.processed.0.reading.taken',
          timestampMs: Date.parse(evs[0].time!),
          deliveryCount: 1,
          redriven: false,
          events: evs,
          data: new Uint8Array(),
        });
      }
      pending = [];
      await worker.handle(batch);
      peakRss = Math.max(peakRss, process.memoryUsage.rss());
    };
    for (const e of events()) {
      pending.push(e);
      if (pending.length < o.perCommit) continue;
      const last = Date.parse(e.time!);
      await commit();
      if (last >= nextSample) {
        gc();
        const m = process.memoryUsage();
        samples.push({
          minute: Math.round((last - T0) / MINUTE),
          keys: windows.keyCount(),
          checkpointBytes: await checkpointBytes(checkpoints, 0),
          heapMB: m.heapUsed / 2 ** 20,
          rssMB: m.rss / 2 ** 20,
        });
        nextSample += 10 * MINUTE;
      }
    }
    await commit();
    const seconds = (Date.now() - started) / 1000;

    // A new owner loads the checkpoint: every key whose last window ended
    // within the retention of the final watermark must be there, exact.
    const restored = create();
    await loadWindows(checkpoints, results, 0, () => restored);
    const kept = restored.snapshot().aggregations.totals.keys;
    const watermark = firstAt(o.keys - 1) + SECOND_AFTER - o.latenessMs;
    let inRetention = 0;
    const wrong: string[] = [];
    for (let i = o.keys - 1; i >= 0; i--) {
      const lastEnd = Math.floor((firstAt(i) + (hasSecond(i) ? SECOND_AFTER : 0)) / MINUTE) * MINUTE + MINUTE;
      if (lastEnd < watermark - o.retentionMs) break;
      inRetention++;
      const cells = kept[`device-${i}`];
      const got = (cells ?? []).reduce((t, [, , , acc]) => ({ count: t.count + (acc.count as number), sum: t.sum + (acc.sum as number) }), {
        count: 0,
        sum: 0,
      });
      const want = hasSecond(i) ? { count: 2, sum: amountOf(i, false) + amountOf(i, true) } : { count: 1, sum: amountOf(i, false) };
      if (got.count !== want.count || got.sum !== want.sum)
        wrong.push(`device-${i}: ${cells ? JSON.stringify(got) : 'missing'}, expected ${JSON.stringify(want)}`);
    }
    await dropBucket();
    return {
      options: o,
      seconds,
      applied: counters.applied,
      late: counters.late,
      boundKeys: boundOfKeys(o),
      samples,
      peakRssMB: peakRss / 2 ** 20,
      inRetention,
      restoredKeys: Object.keys(kept).length,
      wrong: wrong.slice(0, 10),
    };
  } finally {
    await nc.close();
  }
}

export function formatReport(r: RetentionReport): string {
  const steady = r.samples.filter((s) => s.minute >= 20);
  const range = (f: (s: RetentionSample) => number, digits = 0) =>
    `${Math.min(...steady.map(f)).toFixed(digits)}..${Math.max(...steady.map(f)).toFixed(digits)}`;
  const o = r.options;
  return [
    `state retention: ${o.keys.toLocaleString('en')} keys, ${r.applied.toLocaleString('en')} events over ${o.spanMs / MINUTE} min of event time, retention ${o.retentionMs / MINUTE} min, lateness ${o.latenessMs / 1000} s, ${o.perCommit.toLocaleString('en')} events per commit, one partition: ${r.seconds.toFixed(1)} s`,
    `bound on keys held: ${r.boundKeys.toLocaleString('en')} ((retention + retention/16 + lateness + 20 s + one window + one commit) x ${Math.round((o.keys / o.spanMs) * MINUTE)} keys/min)`,
    'minute    keys held   checkpoint bytes   heap MB (after GC)   rss MB',
    ...r.samples.map(
      (s) =>
        `${String(s.minute).padStart(6)} ${String(s.keys).padStart(12)} ${String(s.checkpointBytes).padStart(18)} ${s.heapMB.toFixed(1).padStart(20)} ${s.rssMB.toFixed(0).padStart(8)}`,
    ),
    `from minute 20: keys ${range((s) => s.keys)}, checkpoint ${range((s) => s.checkpointBytes)} bytes, heap ${range((s) => s.heapMB, 1)} MB, rss ${range((s) => s.rssMB)} MB; peak rss ${r.peakRssMB.toFixed(0)} MB`,
    `restored: ${r.restoredKeys.toLocaleString('en')} keys; ${r.inRetention.toLocaleString('en')} in retention, ${r.wrong.length === 0 ? 'all exact' : `wrong: ${r.wrong.join('; ')}`}`,
  ].join('\n');
}

function arg(name: string, fallback?: string): string {
  const i = process.argv.indexOf(`--${name}`);
  const value = i >= 0 ? process.argv[i + 1] : fallback;
  if (value === undefined) throw new Error(`--${name} is required (e.g. --nats nats://127.0.0.1:4333)`);
  return value;
}

if (require.main === module) {
  const count = (name: string, fallback: string) => {
    const n = Number(arg(name, fallback));
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} ${JSON.stringify(arg(name, fallback))} is not accepted: give a whole number above 0`);
    return n;
  };
  runRetentionBench({
    natsUrl: arg('nats'),
    keys: count('keys', '1000000'),
    spanMs: parseDuration(arg('span', '2h')),
    retentionMs: parseDuration(arg('retention', '10m')),
    latenessMs: parseDuration(arg('lateness', '1m')),
    perCommit: count('per-commit', '50000'),
  }).then(
    (report) => {
      process.stderr.write(`${formatReport(report)}\n`);
      process.stdout.write(`${JSON.stringify(report)}\n`);
    },
    (err: Error) => {
      process.stderr.write(`retention-bench: ${err.message}\n`);
      process.exitCode = 1;
    },
  );
}
