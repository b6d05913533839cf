import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { consumerName, encodeEnvelope, StageInput, Subjects } from '@mesh/contracts';
import { provisionMesh } from '@mesh/messaging';
import { orderEvent, startNatsServer, type NatsServer } from '@mesh/testing';
import { BehaviorSubject } from 'rxjs';
import { createLogger } from './logger';
import { StageRunner, type InputEnvelope } from './stage-runner';

/** Resolves once `check` holds, polling; rejects after `timeoutMs`. */
async function until(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`${what} did not happen within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('StageRunner handing a partition over (real nats-server)', () => {
  let server: NatsServer;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  const logs: string[] = [];
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);

  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connect({ servers: server.url });
    jsm = await jetstreamManager(nc);
    await provisionMesh(nc, { partitions: 1 });
    process.on('warning', onWarning);
  });
  afterAll(async () => {
    process.off('warning', onWarning);
    await nc?.close();
    await server?.stop();
  });

  it('finishes and acks the batch in flight when the partition leaves its ownership, then releases it', async () => {
    const owned = new BehaviorSubject<ReadonlySet<number>>(new Set([0]));
    let handOver!: () => void;
    const handing = new Promise<void>((r) => (handOver = r));
    let started!: (batch: InputEnvelope[]) => void;
    const inHandle = new Promise<InputEnvelope[]>((r) => (started = r));
    let released = false;
    const runner = new StageRunner({
      stage: 'router',
      js: jetstream(nc),
      jsm,
      maxAckPending: 100,
      ownership: owned,
      open: async () => ({
        handle: async (batch) => {
          started(batch);
          await handing;
        },
      }),
      batchMessages: 10,
      pullMessages: 10,
      ackWaitMs: 30_000,
      log: createLogger({}, 'debug', (l) => logs.push(l)),
      released: () => {
        released = true;
      },
    });
    runner.start();
    const ack = await jetstream(nc).publish(Subjects.ingest(0, 'order.created'), encodeEnvelope([orderEvent('k', 1, 5)]));
    expect((await inHandle).map((e) => e.seq)).toEqual([ack.seq]);

    // A rebalance takes the partition away while its batch is at work: the
    // handover is graceful and unbounded, so nothing may be given up early.
    owned.next(new Set());
    await new Promise((r) => setTimeout(r, 300));
    expect(released).toBe(false);
    handOver();

    await until(() => released, 5_000, 'releasing the partition');
    const info = await jsm.consumers.info(StageInput.router, consumerName('router', 0));
    expect(info.ack_floor.stream_seq).toBe(ack.seq);
    expect(info.num_ack_pending).toBe(0);
    expect(info.num_redelivered).toBe(0);
    expect(warnings.filter((w) => /TimeoutOverflowWarning/.test(w))).toEqual([]);
    expect(logs.filter((l) => /"level":"(warn|error)"/.test(l))).toEqual([]);
    await runner.stop(1_000);
  });

  it('keeps a batch that takes longer than the ack wait from being redelivered, and again after an idle spell', async () => {
    const ackWaitMs = 1_000;
    const seen: { seq: number; deliveryCount: number }[] = [];
    const runner = new StageRunner({
      stage: 'router',
      js: jetstream(nc),
      jsm,
      maxAckPending: 100,
      ownership: new BehaviorSubject<ReadonlySet<number>>(new Set([0])),
      open: async () => ({
        handle: async (batch) => {
          seen.push(...batch.map((e) => ({ seq: e.seq, deliveryCount: e.deliveryCount })));
          // A slow handler: three ack waits.
          await new Promise((r) => setTimeout(r, 3 * ackWaitMs));
        },
      }),
      batchMessages: 10,
      pullMessages: 10,
      ackWaitMs,
      log: createLogger({}, 'debug', (l) => logs.push(l)),
    });
    runner.start();
    const js = jetstream(nc);
    // The keep-alive runs only while messages are in hand: it must start again for the second.
    for (const amount of [1, 2]) {
      const ack = await js.publish(Subjects.ingest(0, 'order.created'), encodeEnvelope([orderEvent('k', amount, 5)]));
      await until(
        async () => (await jsm.consumers.info(StageInput.router, consumerName('router', 0))).ack_floor.stream_seq === ack.seq,
        10_000,
        `the slow batch of ${ack.seq} acked`,
      );
    }
    await runner.stop(1_000);
    const info = await jsm.consumers.info(StageInput.router, consumerName('router', 0));
    expect({ redelivered: info.num_redelivered, deliveries: seen.map((s) => s.deliveryCount) }).toEqual({ redelivered: 0, deliveries: [1, 1] });
  }, 30_000);
});
