import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { Buckets, consumerName, retryRecordPrefix, Streams, Subjects } from '@mesh/contracts';
import { ensurePartitionConsumers, provisionMesh, publishEnvelope } from '@mesh/messaging';
import { orderEvent, startNatsServer, type NatsServer } from '@mesh/testing';
import { commandContext } from './context';
import { partitionRows, showPartitions } from './partitions';
import { MemoryOutput } from './output';

describe('mesh partitions (real nats-server)', () => {
  let server: NatsServer;
  let nc: NatsConnection;
  let js: JetStreamClient;
  let n = 0;

  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connect({ servers: server.url });
    // A long lease TTL so the lease written below outlives the test.
    await provisionMesh(nc, { partitions: 4, leaseTtlMs: 120_000 });
    // Only the router's consumers exist: as if only routers had started.
    await ensurePartitionConsumers(nc, 'router', 4, { maxAckPending: 100, ackWaitMs: 60_000 });
    js = jetstream(nc);
  });
  afterAll(async () => {
    await nc?.close();
    await server?.stop();
  });

  async function ingest(partition: number, count: number): Promise<number[]> {
    const seqs: number[] = [];
    for (let i = 0; i < count; i++) {
      const ack = await publishEnvelope(js, { subject: Subjects.ingest(partition, 'x'), msgId: `test:${++n}`, events: [orderEvent(`k${n}`, n, 1)] });
      seqs.push(ack.seq);
    }
    return seqs;
  }

  async function rows(json = false) {
    const out = new MemoryOutput();
    const ctx = await commandContext(nc, out, { json });
    return { ctx, out };
  }

  it('shows each partition consumer with its lag, ack floor and lease owner', async () => {
    await ingest(1, 3);
    await ingest(3, 1);
    const leases = await new Kvm(nc).open(Buckets.leases);
    await leases.put('router.01', JSON.stringify({ owner: 'router-host-1', since: new Date().toISOString() }));

    const { ctx } = await rows();
    const router = await partitionRows(ctx, { stage: 'router' });
    expect(router.map((r) => [r.partition, r.consumer, r.stream, r.lag, r.ackFloor, r.owner])).toEqual([
      [0, consumerName('router', 0), Streams.ingest, 0, 0, null],
      [1, consumerName('router', 1), Streams.ingest, 3, 0, 'router-host-1'],
      [2, consumerName('router', 2), Streams.ingest, 0, 0, null],
      [3, consumerName('router', 3), Streams.ingest, 1, 0, null],
    ]);

    // Delivered but not acknowledged still counts as lag; acknowledged moves the ack floor.
    const consumer = await js.consumers.get(Streams.ingest, consumerName('router', 1));
    const m = (await consumer.next({ expires: 5_000 }))!;
    const delivered = (await partitionRows(ctx, { stage: 'router' }))[1];
    expect([delivered.lag, delivered.pending, delivered.ackPending, delivered.ackFloor]).toEqual([3, 2, 1, 0]);
    await m.ackAck();
    const acked = (await partitionRows(ctx, { stage: 'router' }))[1];
    expect([acked.lag, acked.pending, acked.ackPending, acked.ackFloor]).toEqual([2, 2, 0, m.seq]);
  });

  it('lists every stage, marking consumers no service has created yet', async () => {
    const { ctx, out } = await rows();
    await showPartitions(ctx, {});
    expect(out.stdout[0]).toMatch(/^STAGE\s+P\s+CONSUMER\s+LAG\s+PENDING\s+ACK PENDING\s+ACK FLOOR\s+RETRYING\s+OWNER$/);
    expect(out.stdout.slice(1, 13).map((l) => l.split(/\s+/).slice(0, 2).join(' '))).toEqual(
      ['router', 'processor', 'aggregator'].flatMap((s) => [0, 1, 2, 3].map((p) => `${s} ${p}`)),
    );
    expect(out.stdout[2]).toMatch(/^router\s+1\s+MESH_INGEST\/router-p01\s+2\s+2\s+0\s+\d+\s+-\s+router-host-1$/);
    expect(out.stdout[5]).toMatch(/^processor\s+0\s+MESH_ROUTED\/processor-p00 \(missing\)\s+-\s+-\s+-\s+-\s+0\s+-$/);
    expect(out.stdout[13]).toBe('total lag: router 3, processor 0, aggregator 0');
    expect(out.stdout[14]).toBe('(missing: no service of that stage has created the consumer yet)');
  });

  it('gives one stage as JSON, with the processor envelopes waiting for a retry', async () => {
    const checkpoints = await new Kvm(nc).open(Buckets.checkpoints);
    await checkpoints.put(`${retryRecordPrefix(2)}17`, JSON.stringify({ waiting: [{ index: 0, key: 'k', attempts: 1, notBefore: 0 }] }));
    await checkpoints.put(`${retryRecordPrefix(2)}19`, JSON.stringify({ waiting: [{ index: 3, key: 'k', attempts: 0, notBefore: 0 }] }));
    const { ctx, out } = await rows(true);
    await showPartitions(ctx, { stage: 'processor' });
    const { partitions } = out.json<{ partitions: Record<string, unknown>[] }>();
    expect(partitions).toHaveLength(4);
    expect(partitions[2]).toEqual({
      stage: 'processor',
      partition: 2,
      stream: Streams.routed,
      consumer: 'processor-p02',
      exists: false,
      lag: null,
      pending: null,
      ackPending: null,
      ackFloor: null,
      owner: null,
      retrying: 2,
    });
    expect(partitions.map((r) => r.retrying)).toEqual([0, 0, 2, 0]);
  });
});
