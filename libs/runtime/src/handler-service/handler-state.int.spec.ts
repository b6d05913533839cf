import { jetstreamManager, jetstream, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { Buckets, encodeEnvelope, handlerStatePrefix, Streams, Subjects, type CloudEvent } from '@mesh/contracts';
import { provisionMesh } from '@mesh/messaging';
import { startNatsServer, type NatsServer } from '@mesh/testing';
import { defineHandler } from '../handler';
import { createLogger } from '../logger';
import type { InputEnvelope } from '../stage-runner';
import { HandlerStateStore } from './handler-state';
import { processorWorker } from './processor-worker';
import { RetryLedger } from './retry-ledger';

const write = (value: unknown) => ({ json: value === undefined ? undefined : JSON.stringify(value) });

describe('handler state against a real nats-server', () => {
  let server: NatsServer;
  let nc: NatsConnection;
  let kv: KV;
  let jsm: JetStreamManager;
  let js: JetStreamClient;

  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connect({ servers: server.url });
    await provisionMesh(nc, { partitions: 16 });
    kv = await new Kvm(nc).open(Buckets.checkpoints);
    jsm = await jetstreamManager(nc);
    js = jetstream(nc);
  });
  afterAll(async () => {
    await nc?.close();
    await server?.stop();
  });

  it('loads what was committed: values, deletes and the position of the last event applied, per handler and key', async () => {
    const store = await HandlerStateStore.load(kv, jsm, handlerStatePrefix(1));
    store.apply('score', 'customer 7/ü', write({ score: 40 }), { seq: 10, index: 2 });
    store.apply('score', 'c-2', write(1), { seq: 11, index: 0 });
    store.apply('dedup', 'c-2', write(['e-1']), { seq: 12, index: 0 });
    store.apply('score', 'c-2', write(undefined), { seq: 13, index: 1 });
    await store.commit();
    // Another partition's state is not this one's.
    const other = await HandlerStateStore.load(kv, jsm, handlerStatePrefix(2));
    other.apply('score', 'c-9', write(5), { seq: 14, index: 0 });
    await other.commit();

    const loaded = await HandlerStateStore.load(kv, jsm, handlerStatePrefix(1));
    expect(loaded.size()).toBe(3);
    expect(loaded.get('score', 'customer 7/ü')).toEqual({ score: 40 });
    expect(loaded.get('score', 'c-2')).toBeUndefined();
    expect(loaded.get('dedup', 'c-2')).toEqual(['e-1']);
    expect(loaded.get('score', 'c-9')).toBeUndefined();
    expect(loaded.applied('score', 'customer 7/ü', { seq: 10, index: 2 })).toBe(true);
    expect(loaded.applied('score', 'customer 7/ü', { seq: 10, index: 3 })).toBe(false);
    expect(loaded.applied('score', 'customer 7/ü', { seq: 9, index: 99 })).toBe(true);
    expect(loaded.applied('score', 'c-2', { seq: 13, index: 1 })).toBe(true);
    expect(loaded.applied('dedup', 'c-2', { seq: 13, index: 0 })).toBe(false);
  });

  it('writes only the keys a batch changed, each by compare-and-set, so a stale owner fails instead of overwriting', async () => {
    const prefix = handlerStatePrefix(3);
    const first = await HandlerStateStore.load(kv, jsm, prefix);
    first.apply('h', 'a', write(1), { seq: 1, index: 0 });
    first.apply('h', 'b', write(1), { seq: 1, index: 1 });
    await first.commit();
    const revisionOfB = (await kv.get(`${prefix}h.b`))!.revision;

    const stale = await HandlerStateStore.load(kv, jsm, prefix);
    first.apply('h', 'a', write(2), { seq: 2, index: 0 });
    await first.commit();
    expect((await kv.get(`${prefix}h.b`))!.revision).toBe(revisionOfB);
    expect((await kv.get(`${prefix}h.a`))!.json()).toEqual({ s: 2, i: 0, v: 2 });

    stale.apply('h', 'a', write(99), { seq: 2, index: 0 });
    await expect(stale.commit()).rejects.toThrow(/wrong last sequence/);
    expect((await kv.get(`${prefix}h.a`))!.json()).toEqual({ s: 2, i: 0, v: 2 });
  });

  it('skips, after a crash before the ack, the events a batch applied, publishing nothing again', async () => {
    const partition = 4;
    const counter = defineHandler({
      name: 'counter',
      types: ['tick'],
      handle(_event, ctx) {
        const n = (ctx.state.get<number>() ?? 0) + 1;
        ctx.state.set(n);
        return { type: 'tick.counted', data: { n } };
      },
    });
    const events: CloudEvent[] = ['a', 'b', 'a'].map((key, i) => ({ specversion: '1.0', id: `t-${i}`, source: 'test', type: 'tick', partitionkey: key }));
    const ack = await js.publish(Subjects.routed('processor', partition, 'counter'), encodeEnvelope(events));
    const envelope = (deliveryCount: number): InputEnvelope => ({
      seq: ack.seq,
      subject: Subjects.routed('processor', partition, 'counter'),
      timestampMs: Date.now(),
      deliveryCount,
      redriven: false,
      events,
      data: encodeEnvelope(events),
    });
    const open = async () =>
      processorWorker({
        js,
        partition,
        partitions: 16,
        handlers: new Map([['counter', counter]]),
        keyConcurrency: 4,
        maxEvents: 500,
        maxBytes: 512 * 1024,
        counters: { processed: 0, emitted: 0, failed: 0, retried: 0 },
        ledger: await RetryLedger.load(kv, jsm, partition, 0),
        resume: { ackFloor: 0, deliveredUpTo: ack.seq },
        log: createLogger({}, 'error', () => {}),
        state: await HandlerStateStore.load(kv, jsm, handlerStatePrefix(partition)),
      });
    const processed = async () => (await jsm.streams.info(Streams.processed)).state.messages;

    const before = await processed();
    await (await open()).handle([envelope(1)]);
    const stored = await processed();
    expect(stored).toBeGreaterThan(before);
    // The process died before the ack: a new owner gets the envelope again.
    const again = await open();
    await again.handle([envelope(2)]);
    expect(await processed()).toBe(stored);
    const state = await HandlerStateStore.load(kv, jsm, handlerStatePrefix(partition));
    expect(state.get('counter', 'a')).toBe(2);
    expect(state.get('counter', 'b')).toBe(1);
  });
});
