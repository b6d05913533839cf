import { jetstream } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { aggregateKvKey, Buckets, encodeEnvelope } from '@mesh/contracts';
import { provisionMesh } from '@mesh/messaging';
import { chunkOf, PartitionWindows, type InputEnvelope } from '@mesh/runtime';
import { orderEvent, startNatsServer, type NatsServer } from '@mesh/testing';
import { aggregatorWorker, loadWindows, type AggregatorCounters } from './aggregator-worker';
import totals from './aggregations/totals.aggregation';

const time = '2026-01-05T10:00:30.000Z';

function envelope(seq: number, key: string, amounts: number[], at = time): InputEnvelope {
  const events = amounts.map((a, i) => ({ ...orderEvent(key, seq * 10 + i, a), time: at }));
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

  async function open(partition: number, o: { inlineMaxBytes?: number; retainClosed?: number; checkpoints?: KV } = {}) {
    const kvm = new Kvm(nc);
    const results = await kvm.open(Buckets.aggregates);
    const checkpoints = o.checkpoints ?? (await kvm.open(Buckets.checkpoints));
    const { windows, checkpoint } = await loadWindows(
      checkpoints,
      results,
      partition,
      () => new PartitionWindows([totals], { defaultLatenessMs: 60_000, retainClosed: o.retainClosed ?? 10 }),
      o.inlineMaxBytes === undefined ? {} : { inlineMaxBytes: o.inlineMaxBytes },
    );
    const counters: AggregatorCounters = { applied: 0, skipped: 0, late: 0, closed: 0 };
    return { worker: aggregatorWorker({ js: jetstream(nc), partition, results, windows, checkpoint, counters }), results, counters, windows, checkpoint };
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

  it('a new owner rewrites the checkpointed results when it opens the partition, before any new batch', async () => {
    const first = await open(5);
    await first.worker.handle([envelope(1, 'idle', [4, 5])]);
    // The results diverge from the checkpoint: the owner died between the
    // checkpoint and its results put, or something overwrote or deleted them.
    await first.results.put(aggregateKvKey('totals', 'idle'), JSON.stringify({ name: 'totals', key: 'idle', windows: [{ count: 99, sum: 99 }] }));
    await first.results.delete(aggregateKvKey('totals', 'idle-gone'));
    await first.worker.handle([envelope(2, 'idle-gone', [1])]);
    await first.results.delete(aggregateKvKey('totals', 'idle-gone'));
    // The partition moves and no event of it ever comes again: opening is all the new owner does.
    const next = await open(5);
    expect(await countOf(next.results, 'idle')).toMatchObject({ count: 2, sum: 9 });
    expect(await countOf(next.results, 'idle-gone')).toMatchObject({ count: 1, sum: 1 });
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

  /** One envelope per minute, each with one event for every one of `keys` keys. */
  function minutes(firstSeq: number, count: number, keys: number, prefix: string): InputEnvelope[] {
    return Array.from({ length: count }, (_, m) => {
      const at = new Date(Date.parse('2026-01-05T10:00:30.000Z') + (firstSeq + m) * 60_000).toISOString();
      const events = Array.from({ length: keys }, (_, k) => ({ ...orderEvent(`${prefix}${k}`, (firstSeq + m) * 10_000 + k, 1), time: at }));
      return {
        seq: firstSeq + m,
        subject: 'mesh.processed.7.order.validated',
        timestampMs: Date.parse(at),
        deliveryCount: 1,
        redriven: false,
        events,
        data: encodeEnvelope(events),
      };
    });
  }

  it('checkpoints a partition whose state is larger than the server takes in one message, and a new owner restores it exactly', async () => {
    // 350 keys with an hour of one-minute windows: about 1.2 MB of state, past the 1 MB max_payload.
    const first = await open(7, { retainClosed: 60 });
    const hour = minutes(1, 61, 350, 'big-');
    for (let m = 0; m < hour.length; m += 10) await first.worker.handle(hour.slice(m, m + 10));
    expect(first.windows.snapshotJson().length).toBeGreaterThan(nc.info!.max_payload);
    expect(first.checkpoint.isChunked).toBe(true);
    const next = await open(7, { retainClosed: 60 });
    expect(next.windows.snapshot()).toEqual(first.windows.snapshot());
    // And it goes on from there: the inputs it already has are skipped.
    await next.worker.handle([...minutes(60, 3, 350, 'big-')]);
    expect(next.counters).toMatchObject({ skipped: 2 * 350, applied: 350 });
  }, 60_000);

  it('rewrites only the chunks whose keys changed, and leaves the previous checkpoint whole when the head is not written', async () => {
    const kvm = new Kvm(nc);
    const stored = await kvm.open(Buckets.checkpoints);
    const writes: string[] = [];
    let failHead = false;
    // The bucket as the worker sees it: writes are recorded, and the head's can be made to fail (a crash before the commit).
    const recording = Object.assign(Object.create(stored) as KV, {
      create: (k: string, v: string) => (writes.push(k), stored.create(k, v)),
      update: (k: string, v: string, r: number) => {
        writes.push(k);
        return failHead && k === 'aggregator.p08' ? Promise.reject(new Error('crashed before the head')) : stored.update(k, v, r);
      },
    });
    const first = await open(8, { inlineMaxBytes: 0, checkpoints: recording });
    await first.worker.handle(minutes(1, 1, 40, 'c-'));
    expect(first.checkpoint.isChunked).toBe(true);
    const before = first.windows.snapshot();
    writes.length = 0;
    await first.worker.handle([envelope(2, 'c-3', [5], '2026-01-05T10:01:40.000Z')]);
    expect(writes).toEqual([`aggregator.p08.c${String(chunkOf('c-3')).padStart(2, '0')}.1`, 'aggregator.p08']);
    const afterOne = first.windows.snapshot();
    expect(afterOne).not.toEqual(before);

    failHead = true;
    await expect(first.worker.handle(minutes(3, 1, 40, 'c-'))).rejects.toThrow(/crashed before the head/);
    const next = await open(8, { inlineMaxBytes: 0 });
    expect(next.windows.snapshot()).toEqual(afterOne);
  });

  it('an owner that lost the partition cannot overwrite the chunks of the one that has it', async () => {
    const stale = await open(9, { inlineMaxBytes: 0 });
    const current = await open(9, { inlineMaxBytes: 0 });
    await current.worker.handle(minutes(1, 1, 30, 's-'));
    await expect(stale.worker.handle(minutes(1, 2, 30, 'other-'))).rejects.toThrow(/wrong last sequence|key exists/);
    const reopened = await open(9, { inlineMaxBytes: 0 });
    expect(reopened.windows.snapshot()).toEqual(current.windows.snapshot());
  });
});
