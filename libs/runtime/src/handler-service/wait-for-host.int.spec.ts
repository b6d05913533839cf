/**
 * The worker of a handler service given events of a handler it does not
 * host, against a real nats-server: they wait while the handler's record
 * names this service (split, nak'ed, nothing published, the key's later
 * events behind them), a redelivery that cannot be split holds the
 * partition, and a removed handler's events are dead-lettered saying so.
 */
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { Buckets, encodeEnvelope, Headers, Streams, Subjects, type CloudEvent } from '@mesh/contracts';
import { provisionMesh } from '@mesh/messaging';
import { orderEvent, startNatsServer, type NatsServer } from '@mesh/testing';
import { defineHandler } from '../handler';
import { createLogger } from '../logger';
import type { InputEnvelope } from '../stage-runner';
import { HandlerNotHostedError, type HandlerRecords, type HandlerStatus } from './handler-records';
import { processorWorker, type ProcessorCounters } from './processor-worker';
import { RetryLedger } from './retry-ledger';

const P = 4;
const orders = defineHandler({ name: 'orders', types: ['order.created'], handle: (e) => ({ type: 'order.seen', data: e.data }) });

/** Records as `mesh_routes` would answer them. */
function records(status: Record<string, HandlerStatus>): HandlerRecords {
  return { status: async (name: string) => status[name] ?? { kind: 'undeclared' } } as unknown as HandlerRecords;
}

describe('events of a handler the instance does not host', () => {
  let server: NatsServer;
  let nc: NatsConnection;
  let js: JetStreamClient;
  let jsm: JetStreamManager;
  let kv: KV;
  let seq = 100;

  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connect({ servers: server.url });
    await provisionMesh(nc, { partitions: P });
    js = jetstream(nc);
    jsm = await jetstreamManager(nc);
    kv = await new Kvm(nc).open(Buckets.checkpoints);
  });
  afterAll(async () => {
    await nc?.close();
    await server?.stop();
  });

  const envelope = (partition: number, handler: string, events: CloudEvent[], deliveryCount = 1): InputEnvelope => {
    const data = encodeEnvelope(events);
    return { seq: ++seq, subject: Subjects.routed('refunds', partition, handler), timestampMs: Date.now(), deliveryCount, redriven: false, events, data };
  };
  const worker = async (partition: number, status: Record<string, HandlerStatus>, resume = { ackFloor: 0, deliveredUpTo: 0 }) => {
    const counters: ProcessorCounters = { processed: 0, emitted: 0, failed: 0, retried: 0 };
    const ledger = await RetryLedger.load(kv, jsm, partition, 0, 'refunds');
    const w = processorWorker({
      js,
      partition,
      partitions: P,
      handlers: new Map([['orders', orders]]),
      keyConcurrency: 4,
      maxEvents: 100,
      maxBytes: 1 << 20,
      counters,
      ledger,
      resume,
      log: createLogger({}, 'error', () => {}),
      service: 'refunds',
      records: records(status),
    });
    return { w, ledger, counters };
  };
  const dlqCount = async () => (await jsm.streams.info(Streams.dlq)).state.messages;
  const declared: HandlerStatus = { kind: 'declared', record: { types: ['refund.requested'], description: '', service: 'refunds' } };

  it('makes them wait, with their key behind them, while the record names this service; nothing is published or dead-lettered', async () => {
    const { w, ledger, counters } = await worker(0, { extra: declared });
    const waiting = envelope(0, 'extra', [orderEvent('k1', 1, 5), orderEvent('k2', 1, 5)]);
    const behind = envelope(0, 'orders', [orderEvent('k1', 2, 5), orderEvent('k3', 1, 5)]);
    const processedBefore = (await jsm.streams.info(Streams.processed)).state.messages;
    const dlqBefore = await dlqCount();

    const out = (await w.handle([waiting, behind])) as ReadonlyMap<number, { kind: string; delayMs?: number }>;

    expect(out.get(waiting.seq)?.kind).toBe('retry');
    expect(out.get(waiting.seq)!.delayMs!).toBeGreaterThan(0);
    expect(out.get(waiting.seq)!.delayMs!).toBeLessThanOrEqual(2_000);
    // k1's later event waits behind it; k3 is handled.
    expect(out.get(behind.seq)?.kind).toBe('retry');
    expect(ledger.toRun(waiting.seq)).toEqual([0, 1]);
    expect(ledger.toRun(behind.seq)).toEqual([0]);
    expect(ledger.waiting(waiting.seq, 0)?.attempts).toBe(0);
    expect(counters).toMatchObject({ processed: 1, failed: 0 });
    expect((await jsm.streams.info(Streams.processed)).state.messages).toBe(processedBefore + 1);
    expect(await dlqCount()).toBe(dlqBefore);
  });

  it('holds the partition for a redelivery that cannot be split (it may have been handled whole by a host)', async () => {
    const { w } = await worker(1, { extra: declared }, { ackFloor: 0, deliveredUpTo: 10_000 });
    const redelivered = envelope(1, 'extra', [orderEvent('k4', 1, 5)], 2);
    await expect(w.handle([redelivered])).rejects.toThrow(HandlerNotHostedError);
    await expect(w.handle([redelivered])).rejects.toThrow("handler 'extra' is not hosted by this instance of 'refunds'");
  });

  it('dead-letters the events of a removed handler with the reason, and those of a handler declared by another service', async () => {
    const { w } = await worker(2, { gone: { kind: 'removed' }, moved: { ...declared, record: { ...declared.record, service: 'billing' } } });
    const before = (await jsm.streams.info(Streams.dlq)).state.last_seq;
    await w.handle([envelope(2, 'gone', [orderEvent('k5', 1, 5)]), envelope(2, 'moved', [orderEvent('k6', 1, 5)])]);
    const letters = [];
    for (let s = before + 1; s <= (await jsm.streams.info(Streams.dlq)).state.last_seq; s++)
      letters.push(await jsm.streams.getMessage(Streams.dlq, { seq: s }));
    expect(letters.map((m) => [m.subject, m.header?.get(Headers.handler), m.header?.get(Headers.error)])).toEqual([
      [Subjects.dlq('refunds', 2), 'gone', "handler 'gone' was removed with mesh handlers rm"],
      [
        Subjects.dlq('refunds', 2),
        'moved',
        "handler 'moved' is declared by service 'billing' now, not 'refunds': events routed to 'refunds' before it moved are not handled there",
      ],
    ]);
  });
});
