import { jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { aggregateKvKey, Buckets, encodeEnvelope } from '@mesh/contracts';
import { provisionMesh } from '@mesh/messaging';
import type { InputEnvelope } from '@mesh/runtime';
import { orderEvent, startNatsServer, type NatsServer } from '@mesh/testing';
import { aggregatorWorker, loadWindows, type AggregatorCounters } from './aggregator-worker';
import totals from './aggregations/totals.aggregation';
import { PartitionWindows } from './window-state';

const time = '2026-01-05T10:00:30.000Z';

function envelope(seq: number, key: string, amounts: number[]): InputEnvelope {
  const events = amounts.map((a, i) => ({ ...orderEvent(key, seq * 10 + i, a), time }));
  return {
    seq,
    subject: 'mesh.processed.3.order.validated',
    timestampMs: Date.parse(time),
    deliveryCount: 1,
    redriven: false,
    events,
    data: encodeEnvelope(events),
  };
}

describe('aggregator worker against a real nats-server', () => {
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

  async function open(partition: number) {
    const kvm = new Kvm(nc);
    const results = await kvm.open(Buckets.aggregates);
    const checkpoints = await kvm.open(Buckets.checkpoints);
    const { windows, revision } = await loadWindows(checkpoints, partition, () => new PartitionWindows([totals], { defaultLatenessMs: 60_000, retainClosed: 10 }));
    const counters: AggregatorCounters = { applied: 0, skipped: 0, late: 0, closed: 0 };
    return { worker: aggregatorWorker({ js: jetstream(nc), partition, results, checkpoints, windows, revision, counters }), results, counters };
  }

  async function countOf(results: Awaited<ReturnType<typeof open>>['results'], key: string) {
    const entry = await results.get(aggregateKvKey('totals', key));
    return (entry!.json() as { windows: { count: number; sum: number }[] }).windows[0];
  }

  it('skips envelopes a previous owner checkpointed but did not ack, so a replay counts nothing twice', async () => {
    const first = await open(3);
    await first.worker.handle([envelope(1, 'k', [5, 6]), envelope(2, 'k', [7])]);
    // The owner dies before acking: the next owner gets both envelopes again, then a new one.
    const next = await open(3);
    await next.worker.handle([envelope(1, 'k', [5, 6]), envelope(2, 'k', [7]), envelope(3, 'k', [100])]);
    expect(next.counters).toMatchObject({ applied: 1, skipped: 3 });
    expect(await countOf(next.results, 'k')).toMatchObject({ count: 4, sum: 118 });
  });

  it('refuses to overwrite a checkpoint another owner wrote since it loaded (compare-and-set)', async () => {
    const stale = await open(4);
    const current = await open(4);
    await current.worker.handle([envelope(1, 'm', [1])]);
    await expect(stale.worker.handle([envelope(2, 'm', [2])])).rejects.toThrow(/wrong last sequence/);
    const reopened = await open(4);
    await reopened.worker.handle([envelope(2, 'm', [2])]);
    expect(await countOf(reopened.results, 'm')).toMatchObject({ count: 2, sum: 3 });
  });
});
