/**
 * Every service describes its HTTP API at /openapi.json (OpenAPI 3.1) and
 * answers errors as RFC 9457 problem details. The documents are read from
 * the real services, so a route added without a description, or a document
 * that drifts from the routes served, fails here.
 */
import { startMesh, startNatsServer, stopAll, type NatsServer, type ServiceName, type ServiceProcess } from '@mesh/testing';

interface Operation {
  summary: string;
  security?: unknown[];
  responses: Record<string, { content?: Record<string, unknown> }>;
}
interface OpenApi {
  openapi: string;
  info: { title: string; version: string };
  paths: Record<string, Record<string, Operation>>;
}

const common = ['/healthz', '/metrics', '/readyz'];
const expected: Record<ServiceName, string[]> = {
  ingest: [...common, '/v1/events'],
  router: [...common, '/v1/partitions', '/v1/routes'],
  processor: [...common, '/v1/handlers', '/v1/partitions'],
  aggregator: [...common, '/v1/aggregates', '/v1/aggregates/{name}', '/v1/aggregates/{name}/{key}', '/v1/aggregates/{name}/{key}/events', '/v1/partitions'],
};

describe('OpenAPI documents and problem details of every service', () => {
  let server: NatsServer;
  let mesh: Record<ServiceName, ServiceProcess> | undefined;
  const docs = new Map<ServiceName, OpenApi>();

  beforeAll(async () => {
    server = await startNatsServer();
    mesh = await startMesh(server.url);
    for (const [name, p] of Object.entries(mesh) as [ServiceName, ServiceProcess][]) {
      const res = await fetch(`${p.url}/openapi.json`);
      expect(res.status).toBe(200);
      docs.set(name, (await res.json()) as OpenApi);
    }
  });
  afterAll(async () => {
    await stopAll(mesh ? Object.values(mesh) : []);
    await server?.stop();
  });

  it.each(Object.keys(expected) as ServiceName[])('%s: OpenAPI 3.1, exactly its routes, each described with its access', (name) => {
    const doc = docs.get(name)!;
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.info.title).toBe(`mesh ${name}`);
    expect(Object.keys(doc.paths).sort()).toEqual(expected[name]);
    for (const [path, methods] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(methods)) {
        if (method === 'head') continue;
        // A route registered without a description falls back to "GET /path".
        expect({ path, method, summary: op.summary }).not.toEqual({ path, method, summary: `${method.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ':$1')}` });
        expect(op.responses['4XX'].content).toHaveProperty(['application/problem+json']);
        const open = ['/healthz', '/readyz', '/metrics'].includes(path);
        expect({ path, security: op.security }).toEqual({ path, security: open ? [] : [{ apiKey: [] }] });
      }
    }
  });

  it.each(Object.keys(expected) as ServiceName[])('%s: a wrong path or method gets problem details', async (name) => {
    const missing = await fetch(`${mesh![name].url}/v1/nothing-here`);
    expect(missing.status).toBe(404);
    expect(missing.headers.get('content-type')).toBe('application/problem+json');
    expect(await missing.json()).toEqual({
      type: 'about:blank',
      title: 'Not Found',
      status: 404,
      detail: 'no route for GET /v1/nothing-here',
      error: 'no route for GET /v1/nothing-here',
      instance: '/v1/nothing-here',
    });
    const wrong = await fetch(`${mesh![name].url}/healthz`, { method: 'DELETE' });
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get('allow')).toBe('GET');
    expect(await wrong.json()).toMatchObject({ title: 'Method Not Allowed', status: 405 });
  });
});
