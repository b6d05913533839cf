/**
 * MESH_STATE_RETENTION at scale, with the real aggregator worker, window
 * state and checkpoint against a real nats-server: 1,000,000 distinct keys
 * (every tenth with a second event 20 s after its first), event times spread
 * over two hours, a retention of 10 minutes, one partition (the worst case:
 * every key in one state). The run is `retention-bench.ts` (built; it
 * prints the figures); this test checks its report: keys held, checkpoint
 * size and heap flat once the first retention has passed, RSS at its peak
 * near the steady state, every key still in retention restored exact.
 *
 * The second test runs the worker with its real outputs: a key dropped by
 * retention leaves the checkpoint, and its final result stays in KV.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { aggregateKvKey, Buckets, type CloudEvent } from '@mesh/contracts';
import { provisionMesh } from '@mesh/messaging';
import { PartitionWindows, type InputEnvelope } from '@mesh/runtime';
import { startNatsServer, type NatsServer } from '@mesh/testing';
import { aggregatorWorker, loadWindows, type AggregatorCounters } from './aggregator-worker';
import totals from './aggregations/totals.aggregation';
import type { RetentionReport, RetentionSample } from './retention-bench';

/** Built by `npm run build` (as the e2e tests need the services' dist). */
const BenchJs = join(__dirname, '..', 'dist', 'retention-bench.js');
const MINUTE = 60_000;
const T0 = Date.parse('2026-03-02T00:00:00.000Z');
const KEYS = 1_000_000;
const LATENESS = MINUTE;
const RETENTION = 10 * MINUTE;

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
    // The measurement runs in a process of its own (the built retention-bench.js), so its heap and RSS are the state's, not Jest's.
    const report = await new Promise<RetentionReport>((resolve, reject) => {
      const child = spawn(process.execPath, [BenchJs, '--nats', server.url, '--keys', String(KEYS), '--span', '2h', '--retention', '10m', '--lateness', '1m'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      child.on('error', reject);
      child.on('close', (code) => {
        console.log(stderr);
        if (code === 0) resolve(JSON.parse(stdout) as RetentionReport);
        else reject(new Error(`retention-bench exited with ${code}: ${stderr}`));
      });
    });
    const steady = report.samples.filter((s) => s.minute >= 20);
    const maxOf = (f: (s: RetentionSample) => number) => Math.max(...steady.map(f));
    const minOf = (f: (s: RetentionSample) => number) => Math.min(...steady.map(f));

    expect(report).toMatchObject({ applied: KEYS + KEYS / 10, late: 0, wrong: [] });
    expect(report.samples.length).toBeGreaterThanOrEqual(11);
    expect(maxOf((s) => s.keys)).toBeLessThanOrEqual(report.boundKeys);
    // Flat: after the first retention the largest sample is within 15% of the
    // smallest (a state that kept every key would grow sixfold from minute 20 to 120).
    expect(maxOf((s) => s.keys)).toBeLessThanOrEqual(1.15 * minOf((s) => s.keys));
    expect(maxOf((s) => s.checkpointBytes)).toBeLessThanOrEqual(1.15 * minOf((s) => s.checkpointBytes));
    expect(maxOf((s) => s.checkpointBytes)).toBeLessThanOrEqual(report.boundKeys * 80);
    expect(maxOf((s) => s.heapMB)).toBeLessThanOrEqual(1.25 * minOf((s) => s.heapMB));
    expect(report.peakRssMB).toBeLessThanOrEqual(1.5 * minOf((s) => s.rssMB));
    // Every key still in retention came back from the checkpoint exact (wrong is empty), and no more than the bound.
    expect(report.inRetention).toBeGreaterThan(0.9 * (KEYS / 12));
    expect(report.restoredKeys).toBeLessThanOrEqual(report.boundKeys);
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
      const evs: CloudEvent[] = [
        {
          specversion: '1.0',
          source: 'retention-test',
          type: 'reading.taken',
          id: `r-${seq}`,
          partitionkey: key,
          time: new Date(T0 + offsetMs).toISOString(),
          data: { amount },
        },
      ];
      return {
        seq,
        subject: 'mesh.processed.5.reading.taken',
        timestampMs: T0 + offsetMs,
        deliveryCount: 1,
        redriven: false,
        events: evs,
        data: new Uint8Array(),
      };
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
      name: 'totals',
      key: 'short-lived',
      windows: [{ start: new Date(T0).toISOString(), end: new Date(T0 + MINUTE).toISOString(), closed: true, count: 2, sum: 9 }],
    });
  });
});
