/**
 * The stage runner's lease checks and its stop-at-once path, against a real
 * nats-server: an instance that can no longer vouch for a partition's lease
 * hands it no batch and acks nothing, and a partition lost while a batch is
 * at work is dropped without its acks and without being released.
 */
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { consumerName, encodeEnvelope, StageInput, stageInput, Subjects, type Stage } from '@mesh/contracts';
import { provisionMesh } from '@mesh/messaging';
import { orderEvent, startNatsServer, type NatsServer } from '@mesh/testing';
import { BehaviorSubject, Subject } from 'rxjs';
import { createLogger } from './logger';
import { StageRunner, type InputEnvelope, type StageRunnerOptions } from './stage-runner';

async function until(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`${what} did not happen within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('StageRunner lease checks and stop at once (real nats-server)', () => {
  let server: NatsServer;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  // One stage per test (router, processor, aggregator), each with its own stream and partition-0 consumer.

  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connect({ servers: server.url });
    jsm = await jetstreamManager(nc);
    await provisionMesh(nc, { partitions: 1 });
  });
  // Stopped even when a test fails, or its pulls would keep jest alive.
  const running: StageRunner[] = [];
  afterEach(async () => {
    await Promise.all(running.splice(0).map((r) => r.stop(1_000)));
  });
  afterAll(async () => {
    await nc?.close();
    await server?.stop();
  });

  const inputSubject = (stage: Stage) =>
    ({
      router: Subjects.ingest(0, 'order.created'),
      processor: Subjects.routed('processor', 0, 'orders'),
      aggregator: Subjects.processed(0, 'order.validated'),
    })[stage];

  /** Ack floor of the stage's partition-0 consumer, once every ack this connection sent has reached the server. */
  const ackFloor = async (stage: Stage) => {
    await nc.flush();
    return (await jsm.consumers.info(stageInput(stage), consumerName(stage, 0))).ack_floor.stream_seq;
  };

  function runner(stage: Stage, o: Partial<StageRunnerOptions>, handle: (b: InputEnvelope[]) => Promise<void>, logs: string[]) {
    const r = new StageRunner({
      stage,
      js: jetstream(nc),
      jsm,
      maxAckPending: 10,
      ownership: new BehaviorSubject<ReadonlySet<number>>(new Set([0])),
      open: async () => ({ handle }),
      batchMessages: 10,
      pullMessages: 10,
      ackWaitMs: 30_000,
      log: createLogger({}, 'debug', (l) => logs.push(l)),
      ...o,
    });
    running.push(r);
    return r;
  }

  it('acks nothing of a batch whose lease lapsed while the worker had it, and acks it once the lease is held again', async () => {
    let held = true;
    const handled: number[][] = [];
    let finish!: () => void;
    const gate = new Promise<void>((r) => (finish = r));
    const logs: string[] = [];
    const r = runner(
      'router',
      { holds: () => held },
      async (batch) => {
        handled.push(batch.map((e) => e.seq));
        if (handled.length === 1) await gate;
      },
      logs,
    );
    r.start();
    const { seq } = await jetstream(nc).publish(inputSubject('router'), encodeEnvelope([orderEvent('k', 1, 5)]));
    await until(() => handled.length === 1, 10_000, 'the first batch reaching the worker');

    // The lease lapses while the worker writes (a long pause, say): its outputs may be out, its acks must not be.
    held = false;
    finish();
    await until(() => logs.some((l) => /partition failed; reopening/.test(l) && /LeaseLostError/.test(l)), 10_000, 'the runner refusing to ack');
    // Reopened without the lease: it is handed to no worker and acked by nobody.
    await until(() => logs.filter((l) => /LeaseLostError/.test(l)).length >= 2, 10_000, 'a second refusal');
    expect(handled).toEqual([[seq]]);
    expect(await ackFloor('router')).toBe(0);

    held = true;
    await until(async () => (await ackFloor('router')) === seq, 10_000, 'the ack once the lease is held');
    expect(handled).toEqual([[seq], [seq]]);
  });

  it('hands no batch to the worker while the lease is not held', async () => {
    let held = false;
    const handled: number[][] = [];
    const logs: string[] = [];
    const r = runner('processor', { holds: () => held }, async (batch) => void handled.push(batch.map((e) => e.seq)), logs);
    r.start();
    const { seq } = await jetstream(nc).publish(inputSubject('processor'), encodeEnvelope([orderEvent('k', 2, 5)]));
    await until(() => logs.filter((l) => /LeaseLostError/.test(l)).length >= 2, 10_000, 'two refusals');
    expect(handled).toEqual([]);
    expect(await ackFloor('processor')).toBe(0);
    held = true;
    await until(async () => (await ackFloor('processor')) === seq, 10_000, 'the ack once the lease is held');
    expect(handled).toEqual([[seq]]);
  });

  it('drops a lost partition at once: the batch at work is not acked (even though the lease reads as held again) and the partition is not released', async () => {
    const lost = new Subject<number>();
    const handled: number[][] = [];
    let finish!: () => void;
    const gate = new Promise<void>((r) => (finish = r));
    let finished = false;
    const released: number[] = [];
    const logs: string[] = [];
    const r = runner(
      'aggregator',
      { holds: () => true, lost, released: (p) => void released.push(p) },
      async (batch) => {
        handled.push(batch.map((e) => e.seq));
        await gate;
        finished = true;
      },
      logs,
    );
    r.start();
    const { seq } = await jetstream(nc).publish(inputSubject('aggregator'), encodeEnvelope([orderEvent('k', 3, 5)]));
    await until(() => handled.length === 1, 10_000, 'the batch reaching the worker');

    lost.next(0);
    expect(logs.some((l) => /partition lost; stopped at once/.test(l))).toBe(true);
    expect(r.assigned()).toEqual([]);
    // A new owner has the message now (delivered again, not acked yet): a
    // late ack from the dropped run would settle it under the new owner's feet.
    const again = await (await jetstream(nc).consumers.get(StageInput.aggregator, consumerName('aggregator', 0))).fetch({ max_messages: 1, expires: 5_000 });
    // What was in hand comes again at once (not after the ack wait).
    const redelivered: number[] = [];
    for await (const m of again) redelivered.push(m.seq);
    expect(redelivered).toEqual([seq]);
    finish();
    await until(() => finished, 5_000, 'the worker finishing');
    // Let the runner's continuation after the worker run: had it acked, the flush in ackFloor would carry the ack.
    await new Promise((res) => setImmediate(res));
    expect(await ackFloor('aggregator')).toBe(0);
    expect(released).toEqual([]);
    expect(handled).toHaveLength(1);
  });
});
