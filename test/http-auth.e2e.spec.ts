/**
 * API keys on every service, as an operator sets them up: keys made with
 * the `mesh apikey` binary in a key file named by MESH_API_KEYS_FILE, the
 * four services as real processes on a real nats-server. Every /v1 endpoint
 * needs a key with its scope; health and readiness stay open; /metrics is
 * open or admin-only by config; a key revoked while the services run is
 * refused without a restart; a key limited to some sources and types cannot
 * send others, and nothing of such a request is stored.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  encodeRequest,
  eventually,
  orderEvent,
  startMesh,
  startNatsServer,
  startService,
  stopAll,
  totalsOf,
  type NatsServer,
  type ServiceName,
  type ServiceProcess,
} from '@mesh/testing';
import { bearer, createKey, meshCli } from './support/api-keys';

type Mesh = Record<ServiceName, ServiceProcess>;

/** Every /v1 endpoint, its method, the service that serves it and the scope it needs. */
const ENDPOINTS: { service: ServiceName; method: 'GET' | 'POST'; path: string; scope: 'ingest' | 'query' }[] = [
  { service: 'ingest', method: 'POST', path: '/v1/events', scope: 'ingest' },
  { service: 'router', method: 'GET', path: '/v1/routes', scope: 'query' },
  { service: 'router', method: 'GET', path: '/v1/partitions', scope: 'query' },
  { service: 'processor', method: 'GET', path: '/v1/handlers', scope: 'query' },
  { service: 'processor', method: 'GET', path: '/v1/partitions', scope: 'query' },
  { service: 'aggregator', method: 'GET', path: '/v1/aggregates', scope: 'query' },
  { service: 'aggregator', method: 'GET', path: '/v1/aggregates/totals/k1', scope: 'query' },
  { service: 'aggregator', method: 'GET', path: '/v1/partitions', scope: 'query' },
];

let seq = 0;
/** One valid event per call, so a POST that is let through answers 202. */
function oneEvent(extra: Record<string, unknown> = {}) {
  return encodeRequest([orderEvent(`auth-${seq}`, seq++, 1, extra)], 'single');
}

async function call(mesh: Mesh, e: (typeof ENDPOINTS)[number], headers: Record<string, string> = {}) {
  if (e.method === 'POST') {
    const { contentType, body } = oneEvent();
    return fetch(`${mesh[e.service].url}${e.path}`, { method: 'POST', headers: { 'content-type': contentType, ...headers }, body });
  }
  return fetch(`${mesh[e.service].url}${e.path}`, { headers });
}

describe('API keys on the HTTP APIs', () => {
  let server: NatsServer;
  let mesh: Mesh;
  let adminMetrics: ServiceProcess | undefined;
  let file: string;
  const keys: Record<string, string> = {};

  beforeAll(async () => {
    file = join(mkdtempSync(join(tmpdir(), 'mesh-keys-')), 'keys.json');
    keys.ingest = await createKey(file, 'shop-ingest', 'ingest');
    keys.query = await createKey(file, 'dashboard', 'query');
    keys.admin = await createKey(file, 'ops', 'admin');
    keys.both = await createKey(file, 'both', 'ingest,query');
    keys.limited = await createKey(file, 'shop-orders', 'ingest', ['--sources', 'test://shop', '--types', 'order.*']);
    keys.victim = await createKey(file, 'leaver', 'ingest,query');
    server = await startNatsServer();
    mesh = await startMesh(server.url, { MESH_API_KEYS_FILE: file, MESH_PARTITIONS: '4' });
  }, 90_000);
  afterAll(async () => {
    await stopAll([...(mesh ? Object.values(mesh) : []), adminMetrics]);
    await server?.stop();
  }, 60_000);

  it('keeps /healthz and /readyz open on every service', async () => {
    for (const s of Object.values(mesh)) {
      for (const path of ['/healthz', '/readyz']) expect([s.name, path, (await fetch(`${s.url}${path}`)).status]).toEqual([s.name, path, 200]);
    }
  });

  it('answers 401 with a Bearer challenge on every /v1 endpoint when no key is sent', async () => {
    for (const e of ENDPOINTS) {
      const res = await call(mesh, e);
      const body = (await res.json()) as { error: string };
      expect([e.service, e.path, res.status, res.headers.get('www-authenticate')]).toEqual([e.service, e.path, 401, 'Bearer']);
      expect(body.error).toContain(`needs an API key with the ${e.scope} scope`);
    }
  });

  it('answers 401 invalid_token for a wrong key, never repeating it', async () => {
    const wrong = [
      'mesh_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
      keys.admin.slice(0, -1) + (keys.admin.endsWith('A') ? 'B' : 'A'),
      'hunter2',
    ];
    for (const key of wrong) {
      for (const e of ENDPOINTS) {
        const res = await call(mesh, e, bearer(key));
        const text = await res.text();
        expect([e.service, e.path, res.status, res.headers.get('www-authenticate')]).toEqual([e.service, e.path, 401, 'Bearer error="invalid_token"']);
        expect(text).not.toContain(key);
      }
    }
  });

  it('lets each scope reach exactly its endpoints, and admin all of them', async () => {
    for (const e of ENDPOINTS) {
      const ok = e.method === 'POST' ? 202 : 200;
      const expectations: [string, number][] = [
        ['ingest', e.scope === 'ingest' ? ok : 403],
        ['query', e.scope === 'query' ? ok : 403],
        ['both', ok],
        ['admin', ok],
      ];
      for (const [key, status] of expectations) {
        const res = await call(mesh, e, bearer(keys[key]));
        const text = await res.text();
        expect([e.service, e.path, key, res.status]).toEqual([e.service, e.path, key, status]);
        if (status === 403) {
          expect(res.headers.get('www-authenticate')).toBe(`Bearer error="insufficient_scope", scope="${e.scope}"`);
          expect(JSON.parse(text).error).toMatch(new RegExp(`needs ${e.scope} \\(or admin\\)$`));
        }
      }
    }
  });

  it('refuses with 403 a request holding events of a source or type the key may not send, listing them and storing nothing', async () => {
    const key = 'limited-key';
    const events = [
      orderEvent(key, 1, 10),
      orderEvent(key, 2, 20, { source: 'test://elsewhere' }),
      orderEvent(key, 3, 30, { type: 'user.created' }),
      orderEvent(key, 4, 40),
    ];
    const { contentType, body } = encodeRequest(events, 'batch');
    const res = await fetch(`${mesh.ingest.url}/v1/events`, { method: 'POST', headers: { 'content-type': contentType, ...bearer(keys.limited) }, body });
    expect(res.status).toBe(403);
    const answer = (await res.json()) as { error: string; refused: unknown[] };
    expect(answer.refused).toEqual([
      { index: 1, source: 'test://elsewhere', type: 'order.created' },
      { index: 2, source: 'test://shop', type: 'user.created' },
    ]);
    expect(answer.error).toMatch(/nothing was stored/);

    // An allowed event of the same key afterwards: once it is counted, anything stored
    // before it in the key's partition would be counted too (per-key order).
    const allowed = encodeRequest([orderEvent(key, 5, 5)], 'single');
    const ok = await fetch(`${mesh.ingest.url}/v1/events`, {
      method: 'POST',
      headers: { 'content-type': allowed.contentType, ...bearer(keys.limited) },
      body: allowed.body,
    });
    expect(ok.status).toBe(202);
    const totals = () =>
      fetch(`${mesh.aggregator.url}/v1/aggregates/totals/${key}`, { headers: bearer(keys.query) }).then(
        (r) => r.json() as Promise<{ windows: { count: number; sum: number }[] }>,
      );
    expect(await eventually(async () => (await totals()).windows.length > 0, 30_000)).toBe(true);
    const all = (await totals()).windows.reduce((t, w) => ({ count: t.count + w.count, sum: t.sum + w.sum }), { count: 0, sum: 0 });
    expect(all).toEqual({ count: 1, sum: 5 });
  });

  it('answers 400 to an oversized or malformed Authorization header, and keeps serving', async () => {
    const e = ENDPOINTS[0];
    const huge = await call(mesh, e, { authorization: `Bearer ${'x'.repeat(5000)}` });
    expect(huge.status).toBe(400);
    expect(((await huge.json()) as { error: string }).error).toMatch(/Authorization header is larger than 4096 bytes/);
    for (const header of ['Bearer', 'Bearer two tokens', `Bearer ${keys.admin} extra`]) {
      const res = await call(mesh, e, { authorization: header });
      expect([header, res.status]).toEqual([header, 400]);
      const text = await res.text();
      expect(text).toMatch(/Authorization header is malformed/);
      expect(text).not.toContain(keys.admin);
    }
    const basic = await call(mesh, e, { authorization: 'Basic dXNlcjpwYXNz' });
    expect(basic.status).toBe(401);
    expect(basic.headers.get('www-authenticate')).toBe('Bearer');
    expect((await call(mesh, e, bearer(keys.ingest))).status).toBe(202);
  });

  it('refuses a key revoked with the CLI while the services run, on every service, without a restart', async () => {
    const pids = Object.values(mesh).map((s) => s.pid);
    for (const e of ENDPOINTS)
      expect([e.service, e.path, (await call(mesh, e, bearer(keys.victim))).status]).toEqual([e.service, e.path, e.method === 'POST' ? 202 : 200]);
    const revoked = await meshCli(['apikey', 'revoke', 'leaver', '--file', file]);
    expect(revoked.code).toBe(0);
    for (const e of ENDPOINTS) {
      expect(await eventually(async () => (await call(mesh, e, bearer(keys.victim))).status === 401, 10_000, 100)).toBe(true);
    }
    // Same processes, other keys unaffected.
    expect(Object.values(mesh).map((s) => s.pid)).toEqual(pids);
    expect((await call(mesh, ENDPOINTS[0], bearer(keys.ingest))).status).toBe(202);
  });

  it('serves /metrics openly by default and only to admin keys with MESH_METRICS_AUTH=admin', async () => {
    for (const s of Object.values(mesh)) expect([s.name, (await fetch(`${s.url}/metrics`)).status]).toEqual([s.name, 200]);
    adminMetrics = await startService('ingest', { NATS_URL: server.url, MESH_API_KEYS_FILE: file, MESH_PARTITIONS: '4', MESH_METRICS_AUTH: 'admin' });
    expect((await fetch(`${adminMetrics.url}/metrics`)).status).toBe(401);
    expect((await fetch(`${adminMetrics.url}/metrics`, { headers: bearer(keys.query) })).status).toBe(403);
    const res = await fetch(`${adminMetrics.url}/metrics`, { headers: bearer(keys.admin) });
    expect(res.status).toBe(200);
    expect(await res.text()).toMatch(/^# HELP /m);
    expect((await fetch(`${adminMetrics.url}/healthz`)).status).toBe(200);
  });

  it('writes no key and no hash into any log', () => {
    for (const s of [...Object.values(mesh), ...(adminMetrics ? [adminMetrics] : [])]) {
      const out = s.output();
      for (const key of Object.values(keys)) expect(out).not.toContain(key.slice(22));
      expect(out).not.toMatch(/sha256:/);
    }
  });

  it('gets the totals of the events it accepted with a query key', async () => {
    const { contentType, body } = encodeRequest([orderEvent('auth-totals', 1, 7)], 'single');
    expect(
      (await fetch(`${mesh.ingest.url}/v1/events`, { method: 'POST', headers: { 'content-type': contentType, ...bearer(keys.ingest) }, body })).status,
    ).toBe(202);
    const count = () =>
      fetch(`${mesh.aggregator.url}/v1/aggregates/totals/auth-totals`, { headers: bearer(keys.query) }).then(
        async (r) => ((await r.json()) as { windows: { count: number }[] }).windows.length,
      );
    expect(await eventually(async () => (await count()) === 1, 30_000)).toBe(true);
    await expect(totalsOf(mesh.aggregator.url, 'auth-totals')).rejects.toThrow(/answered 401/);
  });
});
