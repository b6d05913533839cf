import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { Buckets, retryRecordPrefix } from '@mesh/contracts';
import { provisionMesh } from '@mesh/messaging';
import { startNatsServer, type NatsServer } from '@mesh/testing';
import { RetryLedger, type WaitingEvent } from './retry-ledger';

const waiting = (index: number, key: string, attempts = 1, notBefore = 1000): WaitingEvent => ({ index, key, attempts, notBefore });

describe('the retry ledger against a real nats-server', () => {
  let server: NatsServer;
  let nc: NatsConnection;
  let kv: KV;
  let jsm: JetStreamManager;

  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connect({ servers: server.url });
    await provisionMesh(nc, { partitions: 16 });
    kv = await new Kvm(nc).open(Buckets.checkpoints);
    jsm = await jetstreamManager(nc);
  });
  afterAll(async () => {
    await nc?.close();
    await server?.stop();
  });

  const recordKeys = async (partition: number) => {
    const keys: string[] = [];
    for await (const k of await kv.keys(`${retryRecordPrefix(partition)}>`)) keys.push(k);
    return keys.sort();
  };

  it('holds a key back only for its events after a waiting one, and lets envelopes being handled keep their own order', async () => {
    const ledger = await RetryLedger.load(kv, jsm, 1, 0);
    await ledger.record(10, [waiting(2, 'a'), waiting(5, 'b', 0, 0)]);

    expect(ledger.has(10)).toBe(true);
    expect(ledger.toRun(10)).toEqual([2, 5]);
    expect(ledger.heldBackBy('a', 10, 1, new Set())).toBeUndefined();
    expect(ledger.heldBackBy('a', 10, 3, new Set())).toEqual(waiting(2, 'a'));
    expect(ledger.heldBackBy('a', 11, 0, new Set())).toEqual(waiting(2, 'a'));
    expect(ledger.heldBackBy('a', 11, 0, new Set([10]))).toBeUndefined();
    expect(ledger.heldBackBy('c', 11, 0, new Set())).toBeUndefined();
    expect(ledger.waitsBefore('a', 10)).toBe(false);
    expect(ledger.waitsBefore('a', 11)).toBe(true);
    expect(ledger.headOf('b')).toEqual({ seq: 10, event: waiting(5, 'b', 0, 0) });

    // Key 'a' is done; 'b' still waits.
    await ledger.record(10, [waiting(5, 'b', 0, 0)]);
    expect(ledger.heldBackBy('a', 11, 0, new Set())).toBeUndefined();
    expect(ledger.heldBackBy('b', 11, 0, new Set())).toEqual(waiting(5, 'b', 0, 0));

    await ledger.settle([10]);
    expect(ledger.has(10)).toBe(false);
    expect(ledger.heldBackBy('b', 11, 0, new Set())).toBeUndefined();
    expect(await recordKeys(1)).toEqual([]);
  });

  it('reloads the records of a partition after a restart, not vouching for what was published, and drops those at or below the ack floor', async () => {
    const before = await RetryLedger.load(kv, jsm, 2, 0);
    await before.record(7, [waiting(0, 'x', 2, 5000)]);
    await before.record(9, [waiting(1, 'x', 0, 0), waiting(3, 'y', 1, 6000)]);
    expect(before.toRun(9)).toEqual([1, 3]);

    const after = await RetryLedger.load(kv, jsm, 2, 7);
    expect(after.has(7)).toBe(false);
    expect(after.has(9)).toBe(true);
    // A new owner cannot know that the other events of 9 were published: all of them run again.
    expect(after.toRun(9)).toBeUndefined();
    expect(after.waiting(9, 3)).toEqual(waiting(3, 'y', 1, 6000));
    expect(after.heldBackBy('x', 10, 0, new Set())).toEqual(waiting(1, 'x', 0, 0));
    expect(await recordKeys(2)).toEqual([`${retryRecordPrefix(2)}9`]);
  });

  it('refuses a write by a former owner whose record is stale (compare-and-set)', async () => {
    const stale = await RetryLedger.load(kv, jsm, 3, 0);
    await stale.record(4, [waiting(0, 'k')]);
    const owner = await RetryLedger.load(kv, jsm, 3, 0);
    await owner.record(4, [waiting(0, 'k', 2, 2000)]);

    await expect(stale.record(4, [])).rejects.toThrow();
    expect(owner.waiting(4, 0)).toEqual(waiting(0, 'k', 2, 2000));
    const fresh = await RetryLedger.load(kv, jsm, 3, 0);
    expect(fresh.waiting(4, 0)).toEqual(waiting(0, 'k', 2, 2000));
  });
});
