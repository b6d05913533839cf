/**
 * The router's duplicate window survives a takeover. Events sent again in
 * other requests (mixed with new events and cut differently, so ingest
 * stores them in new envelopes and JetStream's message-id dedup cannot catch
 * them) must be routed once: by the window the router rebuilt from
 * MESH_INGEST when it took the partition. Once after the router was
 * SIGKILLed and started again; once after a handover between two router
 * instances (a second one starts and shares the partitions, the first stops,
 * the second takes its partitions).
 */
import type { CloudEvent } from '@mesh/contracts';
import { partitionOf } from '@mesh/contracts';
import {
  orderEvent,
  postEvents,
  startMesh,
  startNatsServer,
  startService,
  stopAll,
  totalsFor,
  type NatsServer,
  type ServiceName,
  type ServiceProcess,
  type Totals,
} from '@mesh/testing';
import { consumingPartitions } from './support/mesh-state';
import { waitUntilSettled } from './support/settled';

const P = 16;
const KEYS = Array.from({ length: 24 }, (_, i) => `dedup-${i}`);

/** The router's counters (`GET /v1/routes`). */
async function routerCounters(url: string): Promise<{ routed: number; duplicates: number }> {
  const res = await fetch(`${url}/v1/routes`);
  if (res.status !== 200) throw new Error(`GET /v1/routes answered ${res.status}: ${await res.text()}`);
  return ((await res.json()) as { counters: { routed: number; duplicates: number } }).counters;
}

function expectedTotals(events: readonly CloudEvent[]): Record<string, Totals> {
  const out: Record<string, Totals> = Object.fromEntries(KEYS.map((k) => [k, { count: 0, sum: 0 }]));
  for (const e of events) {
    out[e.partitionkey!].count += 1;
    out[e.partitionkey!].sum += (e.data as { amount: number }).amount;
  }
  return out;
}

/** Send `events` in batch requests of `size` events each, one request at a time. */
async function sendInRequests(url: string, events: readonly CloudEvent[], size: number): Promise<void> {
  for (let i = 0; i < events.length; i += size) await postEvents(url, events.slice(i, i + size), 'batch');
}

describe("the router's duplicate window after a takeover", () => {
  let server: NatsServer;
  let mesh: Record<ServiceName, ServiceProcess>;
  const extra: ServiceProcess[] = [];
  const env = () => ({ NATS_URL: server.url, MESH_LEASE_TTL: '2s', MESH_ACK_WAIT: '5s' });
  /** Every distinct event sent so far: what the totals must count, once each. */
  const sent: CloudEvent[] = [];
  let serial = 0;
  const fresh = (n: number) =>
    Array.from({ length: n }, () => {
      const i = serial++;
      return orderEvent(KEYS[i % KEYS.length], i, (i % 13) + 1);
    });

  const drained = () => waitUntilSettled(server.url, P, 60_000);

  beforeAll(async () => {
    server = await startNatsServer();
    mesh = await startMesh(server.url, env());
  }, 60_000);
  afterAll(async () => {
    await stopAll([...(mesh ? Object.values(mesh) : []), ...extra]);
    await server?.stop();
  }, 60_000);

  it('routes once the events sent again in other requests after the router was SIGKILLed and started again', async () => {
    const first = fresh(240);
    sent.push(...first);
    await sendInRequests(mesh.ingest.url, first, 40);
    await drained();

    await mesh.router.kill();
    mesh.router = await startService('router', env());
    // Every event again, in the opposite order and in requests of another size, each with new events among them.
    const again = [...first].reverse();
    const added = fresh(60);
    sent.push(...added);
    const mixed: CloudEvent[] = [];
    again.forEach((e, i) => {
      mixed.push(e);
      if (i % 4 === 3) mixed.push(added[(i - 3) / 4]);
    });
    await sendInRequests(mesh.ingest.url, mixed, 25);
    await drained();

    // The new router dropped exactly the events sent again, and routed the new ones.
    expect(await routerCounters(mesh.router.url)).toMatchObject({ duplicates: first.length, routed: added.length });
    expect(await totalsFor(mesh.aggregator.url, KEYS)).toEqual(expectedTotals(sent));
  }, 150_000);

  it('routes once the events sent again to the partitions that moved in a handover between two routers', async () => {
    const second = await startService('router', env());
    extra.push(second);
    // Both routers share the partitions before anything is sent.
    let sharedOk = false;
    for (const deadline = Date.now() + 30_000; Date.now() < deadline && !sharedOk; await new Promise((r) => setTimeout(r, 200))) {
      const [a, b] = await Promise.all([consumingPartitions(mesh.router.url), consumingPartitions(second.url)]);
      sharedOk = a.length > 0 && b.length > 0 && a.length + b.length === P;
    }
    expect(sharedOk).toBe(true);
    const firstOwned = await consumingPartitions(mesh.router.url);

    const batch = fresh(240);
    sent.push(...batch);
    await sendInRequests(mesh.ingest.url, batch, 40);
    await drained();
    const before = await routerCounters(second.url);

    // The first router leaves; the second takes its partitions.
    expect(await mesh.router.stop()).toBe(0);
    let all: number[] = [];
    for (const deadline = Date.now() + 30_000; Date.now() < deadline && all.length < P; await new Promise((r) => setTimeout(r, 200))) {
      all = await consumingPartitions(second.url);
    }
    expect(all).toHaveLength(P);

    // Sent again: the events of the partitions that moved, cut into other requests with new events among them.
    const moved = batch.filter((e) => firstOwned.includes(partitionOf(e.partitionkey!, P)));
    expect(moved.length).toBeGreaterThan(0);
    const added = fresh(30);
    sent.push(...added);
    const mixed = [...added.slice(0, 15), ...moved.reverse(), ...added.slice(15)];
    await sendInRequests(mesh.ingest.url, mixed, 35);
    await drained();

    const after = await routerCounters(second.url);
    expect({ duplicates: after.duplicates - before.duplicates, routed: after.routed - before.routed }).toEqual({
      duplicates: moved.length,
      routed: added.length,
    });
    expect(await totalsFor(mesh.aggregator.url, KEYS)).toEqual(expectedTotals(sent));
  }, 150_000);
});
