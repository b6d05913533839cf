/**
 * The whole pipeline as a user runs it: a real nats-server, the four
 * services as real processes, 10,000 events over HTTP across 200 keys in
 * single, batch and NDJSON requests, some events sent twice; every key's
 * totals must be exact.
 */
import type { CloudEvent } from '@mesh/contracts';
import {
  eventually,
  orderEvent,
  postEvents,
  startMesh,
  startNatsServer,
  stopAll,
  totalsOf,
  type Format,
  type NatsServer,
  type ServiceProcess,
  type ServiceName,
  type Totals,
} from '@mesh/testing';
import { waitUntilDrained } from './support/mesh-state';

const KEYS = 200;
const EVENTS = 10_000;

async function inPool<T>(items: readonly T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) await work(items[next++]);
    }),
  );
}

describe('the pipeline end to end', () => {
  let server: NatsServer;
  let mesh: Record<ServiceName, ServiceProcess>;

  beforeAll(async () => {
    server = await startNatsServer();
    mesh = await startMesh(server.url);
  }, 60_000);
  afterAll(async () => {
    if (mesh) await stopAll(Object.values(mesh));
    await server?.stop();
  }, 60_000);

  it('turns 10,000 events over HTTP, some sent twice, into exact totals for all 200 keys', async () => {
    // Key "k 17/é" style names check that any key survives the trip to KV and back.
    const keyName = (i: number) => (i % 10 === 0 ? `k ${i}/é` : `k${i}`);
    const events: CloudEvent[] = Array.from({ length: EVENTS }, (_, n) => orderEvent(keyName(n % KEYS), n, (n % 97) + 1));
    const expected = new Map<string, Totals>();
    for (const e of events) {
      const t = expected.get(e.partitionkey!) ?? { count: 0, sum: 0 };
      t.count += 1;
      t.sum += (e.data as { amount: number }).amount;
      expected.set(e.partitionkey!, t);
    }

    // 1,000 single requests, then batch and NDJSON requests of 100 events each.
    const requests: { events: CloudEvent[]; format: Format }[] = [];
    for (let n = 0; n < 1_000; n++) requests.push({ events: [events[n]], format: 'single' });
    for (let n = 1_000, i = 0; n < EVENTS; n += 100, i++) requests.push({ events: events.slice(n, n + 100), format: i % 2 === 0 ? 'batch' : 'ndjson' });
    // Sent twice: 100 whole requests again, and 300 events again inside new mixed requests.
    const again = requests.filter((_, i) => i % 11 === 0).slice(0, 100);
    const scattered = Array.from({ length: 300 }, (_, i) => events[(i * 37) % EVENTS]);
    for (let i = 0; i < scattered.length; i += 50) again.push({ events: scattered.slice(i, i + 50), format: i % 100 === 0 ? 'ndjson' : 'batch' });
    for (const r of again.slice(0, 20)) if (r.format === 'single') again.push({ events: r.events, format: 'ndjson' });

    await inPool([...requests, ...again], 16, (r) => postEvents(mesh.ingest.url, r.events, r.format));

    const keys = [...expected.keys()];
    let actual = new Map<string, Totals>();
    await eventually(
      async () => {
        actual = new Map(await Promise.all(keys.map(async (k) => [k, await totalsOf(mesh.aggregator.url, k)] as const)));
        return keys.every((k) => actual.get(k)!.count >= expected.get(k)!.count);
      },
      90_000,
      500,
    );
    // Once drained nothing more can be counted: a duplicate would show in the comparison.
    expect(await waitUntilDrained(server.url, 16, 60_000)).toBe(true);
    actual = new Map(await Promise.all(keys.map(async (k) => [k, await totalsOf(mesh.aggregator.url, k)] as const)));
    expect(Object.fromEntries(actual)).toEqual(Object.fromEntries(expected));
  }, 150_000);

  it('answers 404 naming the known aggregations for an unknown one', async () => {
    const res = await fetch(`${mesh.aggregator.url}/v1/aggregates/nope/k1`);
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: string }).error).toBe("unknown aggregation 'nope'; known aggregations: totals");
  });
});
