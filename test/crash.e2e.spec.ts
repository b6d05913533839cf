/**
 * Effectively once under crashes, with real processes: while 24,000 events
 * stream in over HTTP, the router, the processor and the aggregator are
 * SIGKILLed one at a time, then all three at once, and nats-server itself is
 * killed and restarted on the same store. The client behaves as a user's
 * would (retries on 503 and dropped connections, same event ids). Every
 * key's totals must equal the exact expected values.
 */
import { eventually, orderEvent, postEvents, startNatsServer, startService, type NatsServer, type ServiceName, type ServiceProcess } from '@mesh/testing';
import { expectExactTotalsOnceDrained } from './support/exact-totals';
import { waitUntilDrained } from './support/mesh-state';

const KEYS = 120;
const EVENTS = 24_000;
const PER_REQUEST = 100;
const WORKERS = 4;

describe('effectively once under crashes', () => {
  let server: NatsServer;
  const live = new Map<ServiceName, ServiceProcess>();
  const env = () => ({ NATS_URL: server.url, MESH_LEASE_TTL: '2s', MESH_ACK_WAIT: '5s' });

  const start = async (name: ServiceName) => {
    const p = await startService(name, env(), { waitReady: false });
    live.set(name, p);
    return p;
  };

  beforeAll(async () => {
    server = await startNatsServer();
    await (await start('processor')).waitReady();
    await Promise.all((['ingest', 'router', 'aggregator'] as const).map(async (n) => (await start(n)).waitReady()));
  }, 60_000);

  afterAll(async () => {
    await Promise.all([...live.values()].map((p) => p.stop()));
    await server?.stop();
  }, 60_000);

  it('counts every event exactly once while stages and the server are killed mid-stream', async () => {
    const keyOf = (n: number) => `acct-${n % KEYS}`;
    const amountOf = (n: number) => (n % 50) + 1;
    let sent = 0;
    const produce = Promise.all(
      Array.from({ length: WORKERS }, async (_, w) => {
        for (let first = w * PER_REQUEST; first < EVENTS; first += WORKERS * PER_REQUEST) {
          const events = Array.from({ length: PER_REQUEST }, (_, i) => orderEvent(keyOf(first + i), first + i, amountOf(first + i)));
          await postEvents(live.get('ingest')!.url, events, (first / PER_REQUEST) % 2 === 0 ? 'batch' : 'ndjson', 120_000);
          sent += events.length;
          await new Promise((r) => setTimeout(r, 15));
        }
      }),
    );
    const when = (fraction: number) => eventually(async () => sent >= EVENTS * fraction, 120_000, 20);
    const crash = async (names: ServiceName[]) => {
      await Promise.all(names.map((n) => live.get(n)!.kill()));
      for (const n of names) await start(n);
    };

    await when(0.1);
    await crash(['router']);
    await when(0.25);
    await crash(['processor']);
    await when(0.4);
    await crash(['aggregator']);
    await when(0.55);
    await crash(['router', 'processor', 'aggregator']);
    await when(0.7);
    await server.kill();
    await new Promise((r) => setTimeout(r, 500));
    await server.restart();
    await produce;
    expect(sent).toBe(EVENTS);

    const expected = new Map<string, { count: number; sum: number }>();
    for (let n = 0; n < EVENTS; n++) {
      const t = expected.get(keyOf(n)) ?? { count: 0, sum: 0 };
      t.count++;
      t.sum += amountOf(n);
      expected.set(keyOf(n), t);
    }
    await expectExactTotalsOnceDrained(
      () => live.get('aggregator')!.url,
      expected,
      () => waitUntilDrained(server.url, 16, 60_000),
    );
  }, 300_000);
});
