/**
 * The replay gate of a stage instance against a real nats-server: what the
 * runner is given in each phase of `mesh replay`, when the instance acks,
 * and which leases it keeps. The runner and ownership are stand-ins (a
 * subject of owned partitions, a list of assigned ones) so each step can be
 * observed.
 */
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { Buckets, ReplayEpochKey, replayAckKey } from '@mesh/contracts';
import { provisionMesh } from '@mesh/messaging';
import { startNatsServer, type NatsServer } from '@mesh/testing';
import { BehaviorSubject } from 'rxjs';
import { createLogger } from './logger';
import { ReplayGate } from './replay-gate';

async function until(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`${what} did not happen within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('ReplayGate (real nats-server)', () => {
  let server: NatsServer;
  let nc: NatsConnection;
  let kv: KV;
  const gates: ReplayGate[] = [];

  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connect({ servers: server.url });
    await provisionMesh(nc, { partitions: 4 });
    kv = await new Kvm(nc).open(Buckets.checkpoints);
  });
  afterAll(async () => {
    gates.forEach((g) => g.stop());
    await nc?.close();
    await server?.stop();
  });

  function gate(instance: string, owned: number[], assigned: () => number[] = () => []) {
    const ownership = new BehaviorSubject<ReadonlySet<number>>(new Set(owned));
    const releases: number[] = [];
    const g = new ReplayGate({
      nc,
      stage: 'aggregator',
      instanceId: instance,
      owned$: ownership,
      release: (p) => void releases.push(p),
      log: createLogger({}, 'error', () => undefined),
    });
    g.attach({ assigned });
    gates.push(g);
    const given: number[][] = [];
    g.owned$.subscribe((s) => given.push([...s].sort()));
    return { g, ownership, releases, given };
  }
  const ack = async (instance: string) => (await kv.get(replayAckKey('aggregator', instance)))?.json<{ epoch: number; phase: string }>();
  const signal = (epoch: number, phase: 'pause' | 'run') => kv.put(ReplayEpochKey, JSON.stringify({ epoch, from: 'beginning', phase }));

  it('gives the runner its partitions under epoch 0 when the mesh never replayed', async () => {
    const { g, given } = gate('never', [0, 1]);
    await g.start();
    expect(given).toEqual([[0, 1]]);
    expect(g.epoch).toBe(0);
    expect(await ack('never')).toBeUndefined();
  });

  it('on pause takes every partition from the runner, acks only once all are stopped, and keeps the leases', async () => {
    let assigned = [0, 1];
    const { g, given, releases, ownership } = gate('a', [0, 1], () => assigned);
    await g.start();
    await signal(1, 'pause');
    await until(() => given.length === 2, 5_000, 'the pause');
    expect(given[1]).toEqual([]);
    assigned = [];
    void g.released(0);
    await new Promise((r) => setTimeout(r, 300));
    expect(await ack('a')).toBeUndefined(); // partition 1 is still finishing
    void g.released(1);
    await until(async () => (await ack('a'))?.phase === 'pause', 5_000, 'the pause ack');
    expect(await ack('a')).toEqual({ epoch: 1, phase: 'pause' });
    expect(releases).toEqual([]); // stopped for the pause, still owned: the leases stay

    // A partition ownership gives up meanwhile (a member joined) is released: the runner is not running it.
    ownership.next(new Set([0]));
    await until(() => releases.length === 1, 5_000, 'the release');
    expect(releases).toEqual([1]);
    expect(given.at(-1)).toEqual([]);

    await signal(1, 'run');
    await until(async () => (await ack('a'))?.phase === 'run', 5_000, 'the run ack');
    expect(given.at(-1)).toEqual([0]);
    expect(g.epoch).toBe(1);
  });

  it('started mid-replay, gives the runner nothing until the phase is run, and acks the pause at once', async () => {
    await signal(2, 'pause');
    const { g, given } = gate('late', [2, 3]);
    await g.start();
    expect(given.flat()).toEqual([]);
    expect(await ack('late')).toEqual({ epoch: 2, phase: 'pause' });
    await signal(2, 'run');
    await until(() => given.at(-1)?.length === 2, 5_000, 'the partitions back');
    expect(given.at(-1)).toEqual([2, 3]);
    expect(g.epoch).toBe(2);
  });
});
