/**
 * On a 3-node JetStream cluster with R3 streams and buckets, the node leading
 * MESH_PROCESSED is SIGKILLed mid-stream: the services carry on after the
 * election and every key's totals are exact. The node then comes back.
 */
import { Streams } from '@mesh/contracts';
import {
  eventually,
  orderEvent,
  postEvents,
  startNatsCluster,
  startService,
  totalsFor,
  type NatsCluster,
  type ServiceName,
  type ServiceProcess,
} from '@mesh/testing';
import { undrainedConsumers, waitUntilDrained } from './support/mesh-state';

const KEYS = 60;
const EVENTS = 12_000;
const PER_REQUEST = 100;

describe('a 3-node cluster losing a stream leader', () => {
  let cluster: NatsCluster;
  const procs = new Map<ServiceName, ServiceProcess>();

  beforeAll(async () => {
    cluster = await startNatsCluster();
    const env = { NATS_URL: cluster.urls, MESH_REPLICAS: '3', MESH_LEASE_TTL: '3s', MESH_ACK_WAIT: '5s' };
    procs.set('processor', await startService('processor', env));
    for (const name of ['ingest', 'router', 'aggregator'] as const) procs.set(name, await startService(name, env));
  }, 120_000);

  afterAll(async () => {
    await Promise.all([...procs.values()].map((p) => p.stop()));
    await cluster?.stop();
  }, 60_000);

  it('keeps counting exactly while the leader of MESH_PROCESSED dies and a new one is elected', async () => {
    const keyOf = (n: number) => `c-${n % KEYS}`;
    const amountOf = (n: number) => (n % 9) + 1;
    let sent = 0;
    const produce = (async () => {
      for (let first = 0; first < EVENTS; first += PER_REQUEST) {
        const events = Array.from({ length: PER_REQUEST }, (_, i) => orderEvent(keyOf(first + i), first + i, amountOf(first + i)));
        await postEvents(procs.get('ingest')!.url, events, 'batch', 120_000);
        sent += events.length;
        await new Promise((r) => setTimeout(r, 20));
      }
    })();

    await eventually(async () => sent >= EVENTS * 0.4, 60_000, 20);
    const leader = await cluster.leaderOf(Streams.processed);
    await cluster.node(leader).kill();
    await produce;
    const newLeader = await cluster.leaderOf(Streams.processed);
    expect(newLeader).not.toBe(leader);

    const expected = new Map<string, { count: number; sum: number }>();
    for (let n = 0; n < EVENTS; n++) {
      const t = expected.get(keyOf(n)) ?? { count: 0, sum: 0 };
      t.count++;
      t.sum += amountOf(n);
      expected.set(keyOf(n), t);
    }
    const url = procs.get('aggregator')!.url;
    await eventually(
      async () => {
        const now = await totalsFor(url, expected.keys());
        return [...expected].every(([k, t]) => now[k].count >= t.count);
      },
      120_000,
      500,
    );
    // Once drained nothing more can be counted: a duplicate would show in the comparison.
    if (!(await waitUntilDrained(cluster.urls, 16, 60_000))) {
      // Say what is stuck and what the services said about it.
      const warnings = [...procs.values()].flatMap((p) =>
        p
          .output()
          .split('\n')
          .filter((l) => /"level":"(warn|error)"/.test(l))
          .slice(-40),
      );
      for (const [name, p] of procs) {
        if (name !== 'ingest') warnings.push(`${name} /v1/partitions: ${await (await fetch(`${p.url}/v1/partitions`)).text()}`);
      }
      throw new Error(`not drained after 60 s: ${(await undrainedConsumers(cluster.urls, 16)).join('; ')}\n${warnings.join('\n')}`);
    }
    expect(await totalsFor(url, expected.keys())).toEqual(Object.fromEntries(expected));

    // The killed node rejoins, and the mesh stays ready throughout.
    await cluster.node(leader).restart();
    for (const p of procs.values()) await p.waitReady(30_000);
  }, 240_000);
});
