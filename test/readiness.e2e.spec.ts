/**
 * Readiness follows NATS: when nats-server dies every service's /readyz
 * turns 503 within seconds (while /healthz stays 200, the process being up),
 * and when it comes back on the same port and store, /readyz is 200 again
 * and events posted afterwards are counted exactly.
 */
import { eventually, orderEvent, postEvents, startMesh, startNatsServer, stopAll, type NatsServer, type ServiceName, type ServiceProcess } from '@mesh/testing';
import { waitUntilDrained } from './support/mesh-state';

const SERVICES: ServiceName[] = ['ingest', 'router', 'processor', 'aggregator'];
/** The default MESH_PARTITIONS. */
const P = 16;

interface Readiness {
  status: number;
  body: { ready: boolean; service: string; instance: string; checks: Record<string, boolean> };
}

async function readyz(p: ServiceProcess): Promise<Readiness> {
  const res = await fetch(`${p.url}/readyz`);
  return { status: res.status, body: (await res.json()) as Readiness['body'] };
}

async function healthz(p: ServiceProcess): Promise<number> {
  const res = await fetch(`${p.url}/healthz`);
  await res.text();
  return res.status;
}

async function totalsOf(aggregatorUrl: string, key: string): Promise<{ count: number; sum: number }> {
  const res = await fetch(`${aggregatorUrl}/v1/aggregates/totals/${encodeURIComponent(key)}`);
  if (res.status === 404) return { count: 0, sum: 0 };
  if (res.status !== 200) throw new Error(`GET totals/${key} answered ${res.status}`);
  const body = (await res.json()) as { windows: { count: number; sum: number }[] };
  return body.windows.reduce((t, w) => ({ count: t.count + w.count, sum: t.sum + w.sum }), { count: 0, sum: 0 });
}

describe('readiness while nats-server dies and comes back', () => {
  let server: NatsServer;
  let mesh: Record<ServiceName, ServiceProcess> | undefined;
  const expected = new Map<string, { count: number; sum: number }>();
  let sentSoFar = 0;

  /** Posts `n` new order events over `keys` keys in batches of 20 and records what the totals should become. */
  async function send(prefix: string, n: number, keys: number): Promise<void> {
    const events = Array.from({ length: n }, (_, i) => orderEvent(`${prefix}${i % keys}`, sentSoFar + i, (i % 5) + 1));
    sentSoFar += n;
    for (const e of events) {
      const t = expected.get(e.partitionkey!) ?? { count: 0, sum: 0 };
      t.count += 1;
      t.sum += (e.data as { amount: number }).amount;
      expected.set(e.partitionkey!, t);
    }
    for (let i = 0; i < events.length; i += 20) await postEvents(mesh!.ingest.url, events.slice(i, i + 20), 'batch', 30_000);
  }

  /** Once every partition consumer is drained nothing more will be counted: the totals then are final and must be exact. */
  async function expectExactTotals(timeoutMs: number): Promise<void> {
    await waitUntilDrained(server.url, P, timeoutMs);
    const keys = [...expected.keys()];
    expect(Object.fromEntries(await Promise.all(keys.map(async (k) => [k, await totalsOf(mesh!.aggregator.url, k)] as const)))).toEqual(
      Object.fromEntries(expected),
    );
  }

  beforeAll(async () => {
    server = await startNatsServer();
    mesh = await startMesh(server.url);
  }, 60_000);

  afterAll(async () => {
    if (mesh) await stopAll(Object.values(mesh));
    await server?.stop();
  }, 60_000);

  it('answers /readyz with ready, service, instance and checks, all passing once started', async () => {
    for (const name of SERVICES) {
      const { status, body } = await readyz(mesh![name]);
      expect(status).toBe(200);
      expect(body).toEqual({ ready: true, service: name, instance: expect.stringMatching(/^[A-Za-z0-9_-]+$/), checks: expect.any(Object) });
      expect(body.checks.nats).toBe(true);
      expect(Object.values(body.checks).every(Boolean)).toBe(true);
    }
    await send('before-', 100, 10);
    await expectExactTotals(20_000);
  }, 40_000);

  it('turns every /readyz 503 with checks.nats false within seconds of nats-server dying, while /healthz stays 200', async () => {
    await server.kill();
    const killedAt = Date.now();
    const states = new Map<ServiceName, Readiness>();
    const allDown = await eventually(
      async () => {
        for (const name of SERVICES) states.set(name, await readyz(mesh![name]));
        return [...states.values()].every((r) => r.status === 503 && r.body.checks.nats === false);
      },
      5_000,
      100,
    );
    expect({ allDown, states: Object.fromEntries(states) }).toMatchObject({ allDown: true });
    expect(Date.now() - killedAt).toBeLessThan(5_000);
    for (const name of SERVICES) {
      const { body } = states.get(name)!;
      expect(body).toMatchObject({ ready: false, service: name });
      expect(await healthz(mesh![name])).toBe(200);
    }
    // Ingest says so to clients too: nothing can be stored, retry later.
    const res = await fetch(`${mesh!.ingest.url}/v1/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/cloudevents+json' },
      body: JSON.stringify(orderEvent('while-down', 1, 1)),
    });
    await res.text();
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).not.toBeNull();
  }, 20_000);

  it('returns every /readyz to 200 after nats-server restarts on the same port and store, and counts later events exactly', async () => {
    await server.restart();
    const states = new Map<ServiceName, Readiness>();
    const allUp = await eventually(
      async () => {
        for (const name of SERVICES) states.set(name, await readyz(mesh![name]));
        return [...states.values()].every((r) => r.status === 200);
      },
      30_000,
      200,
    );
    expect({ allUp, states: Object.fromEntries(states) }).toMatchObject({ allUp: true });
    for (const name of SERVICES) expect(states.get(name)!.body).toMatchObject({ ready: true, checks: { nats: true } });

    await send('after-', 200, 20);
    await send('before-', 50, 10);
    await expectExactTotals(30_000);
  }, 80_000);
});
