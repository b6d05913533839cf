import { jetstream } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { aggregateKvKey, Buckets, encodeEnvelope, partitionOf } from '@mesh/contracts';
import { provisionMesh } from '@mesh/messaging';
import { createLogger, handleAndCommit, PartitionWindows, type InputEnvelope } from '@mesh/runtime';
import { orderEvent, startNatsServer, type NatsServer } from '@mesh/testing';
import { aggregatorWorker, loadWindows, type AggregatorCounters } from './aggregator-worker';
import totals from './aggregations/totals.aggregation';
import { ResultQueries } from './result-queries';

const P = 16;
const time = '2026-01-05T10:00:30.000Z';
const key = 'owner-key';
const partition = partitionOf(key, P);

function envelope(seq: number, amounts: number[], of = key): InputEnvelope {
  const events = amounts.map((a, i) => ({ ...orderEvent(of, seq * 10 + i, a), time }));
  return {
    seq,
    subject: `mesh.processed.${partition}.order.created`,
    timestampMs: Date.parse(time),
    deliveryCount: 1,
    redriven: false,
    events,
    data: encodeEnvelope(events),
  };
}

describe('result queries answered by the owner of a partition, against a real nats-server', () => {
  let server: NatsServer;
  let owner: NatsConnection;
  let asker: NatsConnection;
  let results: KV;
  const log = createLogger({ service: 'aggregator', instance: 'test' }, 'error');

  beforeAll(async () => {
    server = await startNatsServer();
    owner = await connect({ servers: server.url });
    asker = await connect({ servers: server.url });
    await provisionMesh(owner, { partitions: P });
    results = await new Kvm(owner).open(Buckets.aggregates);
  });
  afterAll(async () => {
    await owner?.close();
    await asker?.close();
    await server?.stop();
  });

  async function open() {
    const checkpoints = await new Kvm(owner).open(Buckets.checkpoints);
    const { windows, checkpoint, owned } = await loadWindows(
      checkpoints,
      results,
      partition,
      () => new PartitionWindows([totals], { defaultLatenessMs: 60_000, retainClosed: 10 }),
    );
    const counters: AggregatorCounters = { applied: 0, skipped: 0, late: 0, closed: 0 };
    return { windows, owned, worker: aggregatorWorker({ js: jetstream(owner), partition, results, windows, checkpoint, owned, counters }) };
  }

  const stored = async () => (await results.get(aggregateKvKey('totals', key)))?.string();

  it("answers from the owner's state exactly what KV holds, never a batch it has applied but not yet committed and written", async () => {
    const { owned, worker } = await open();
    const serving = new ResultQueries(owner, { partitions: P, log });
    const asking = new ResultQueries(asker, { partitions: P, log });
    serving.serve(partition, owned, () => true);
    try {
      await handleAndCommit(worker, [envelope(1, [5, 6])]);
      const first = await asking.ask(totals, key);
      expect(JSON.parse(first!)).toMatchObject({ name: 'totals', key, windows: [{ count: 2, sum: 11 }] });
      expect(first).toBe(await stored());

      // The next batch is applied (handle runs up to its first await) but not committed yet: the owner answers
      // what it wrote last, which is what KV holds; a key changed now that the last commit did not write: read KV.
      const handling = handleAndCommit(worker, [envelope(2, [7]), envelope(3, [1], 'other')]);
      expect(await owned.answer('totals', key)).toBe(first);
      expect(await owned.answer('totals', 'other')).toBeUndefined();
      await handling;
      const second = await asking.ask(totals, key);
      expect(JSON.parse(second!)).toMatchObject({ windows: [{ count: 3, sum: 18 }] });
      expect(second).toBe(await stored());
      expect(await owned.answer('totals', 'other')).toBe((await results.get(aggregateKvKey('totals', 'other')))?.string());
    } finally {
      serving.stopAll();
    }
  });

  it('an answer for a key whose put is in flight waits for the put, so it is never newer than KV', async () => {
    const { windows, owned } = await open();
    windows.apply({ ...orderEvent(key, 900, 100), time }, Date.parse(time));
    const writing = owned.write();
    const answer = await owned.answer('totals', key);
    // When the answer came, KV already held it.
    expect(answer).toBe(await stored());
    expect(JSON.parse(answer!)).toMatchObject({ windows: [{ count: 4, sum: 118 }] });
    await writing;
  });

  it('sends the asker to KV when no instance owns the partition, when the owner let it go and when it may no longer answer', async () => {
    const { owned } = await open();
    const serving = new ResultQueries(owner, { partitions: P, log });
    const reads: unknown[] = [];
    const asking = new ResultQueries(asker, {
      partitions: P,
      log,
      metrics: { resultReads: { add: (_n: number, attributes: unknown) => reads.push(attributes) } },
    });
    // Nobody serves the partition: no responders, at once.
    const started = Date.now();
    expect(await asking.ask(totals, key)).toBeUndefined();
    expect(Date.now() - started).toBeLessThan(1_000);

    let mayAnswer = true;
    serving.serve(partition, owned, () => mayAnswer);
    expect(await asking.ask(totals, key)).toBe(await stored());
    mayAnswer = false; // the lease lapsed, or the run that opened the state was abandoned
    expect(await asking.ask(totals, key)).toBeUndefined();
    mayAnswer = true;
    // A key the partition does not hold: KV has whatever there is.
    expect(await owned.answer('totals', 'never-seen')).toBeUndefined();

    serving.stop(partition);
    // The unsubscribe reaches the server before the next request (they travel on two connections).
    await owner.flush();
    expect(owned.isClosed).toBe(true);
    expect(await owned.answer('totals', key)).toBeUndefined();
    expect(await asking.ask(totals, key)).toBeUndefined();
    // An aggregation with a key function is not asked: its keys name no partition.
    expect(await asking.ask({ ...totals, key: () => 'k' }, key)).toBeUndefined();
    expect(reads).toEqual([
      { source: 'kv', reason: 'no-owner' },
      { source: 'owner' },
      { source: 'kv', reason: 'owner-said' },
      { source: 'kv', reason: 'no-owner' },
      { source: 'kv', reason: 'key-function' },
    ]);
  });
});
