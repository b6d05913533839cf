/**
 * HTTPS on a service's listener: with HTTP_TLS_CERT and HTTP_TLS_KEY (a
 * self-signed certificate made here with openssl) the service speaks only
 * TLS, a client that trusts the certificate gets its answers (API keys
 * included), one that does not is refused by the handshake; one of the two
 * variables without the other, or a file that cannot be read, stops the
 * service at start-up naming them.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { orderEvent, RepoRoot, startNatsServer, startService, stopAll, type NatsServer, type ServiceProcess } from '@mesh/testing';
import { bearer, createKey } from './support/api-keys';
import { makeCa, makeLeaf } from './support/openssl-certs';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function https(url: string, o: { ca?: Buffer; method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { method: o.method ?? 'GET', headers: o.headers, ca: o.ca, timeout: 10_000 }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(o.body);
  });
}

/** Run a service to its exit (it must stop by itself within 10 s). */
function runToExit(name: 'ingest' | 'aggregator', env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(RepoRoot, 'services', name, 'dist', 'main.js')], {
      env: { PATH: process.env.PATH ?? '', HTTP_PORT: '0', HTTP_HOST: '127.0.0.1', ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

describe('HTTPS on the service listeners', () => {
  let server: NatsServer;
  let dir: string;
  let ca: Buffer;
  let tlsEnv: Record<string, string>;
  const procs: ServiceProcess[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mesh-tls-'));
    // A CA the client trusts, and the listener's certificate for 127.0.0.1 and localhost signed by it.
    const authority = makeCa(dir, 'https-ca');
    const leaf = makeLeaf(dir, 'https-server', authority);
    ca = readFileSync(authority.cert);
    tlsEnv = { HTTP_TLS_CERT: leaf.cert, HTTP_TLS_KEY: leaf.key };
    server = await startNatsServer();
  }, 30_000);
  afterAll(async () => {
    await stopAll(procs);
    await server?.stop();
  }, 30_000);

  it('serves health, readiness and the API over HTTPS to a client that trusts the certificate', async () => {
    const file = join(dir, 'keys.json');
    const key = await createKey(file, 'shop', 'ingest');
    const ingest = await startService('ingest', { NATS_URL: server.url, ...tlsEnv, MESH_API_KEYS_FILE: file }, { waitReady: false });
    procs.push(ingest);
    expect(ingest.output()).toMatch(/"msg":"http listening","port":\d+,"tls":true/);
    const base = `https://127.0.0.1:${ingest.port}`;
    const deadline = Date.now() + 30_000;
    let ready: Answer | undefined;
    while (Date.now() < deadline) {
      ready = await https(`${base}/readyz`, { ca }).catch(() => undefined);
      if (ready?.status === 200) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(ready?.status).toBe(200);
    expect((await https(`${base}/healthz`, { ca })).status).toBe(200);

    const body = JSON.stringify(orderEvent('tls-1', 1, 3));
    const accepted = await https(`${base}/v1/events`, {
      ca,
      method: 'POST',
      headers: { 'content-type': 'application/cloudevents+json', ...bearer(key) },
      body,
    });
    expect(accepted.status).toBe(202);
    expect(JSON.parse(accepted.body)).toEqual({ accepted: 1, ids: ['tls-1-1'] });
    const noKey = await https(`${base}/v1/events`, { ca, method: 'POST', headers: { 'content-type': 'application/cloudevents+json' }, body });
    expect(noKey.status).toBe(401);

    // A client that does not trust the certificate fails the handshake; plain HTTP gets no answer.
    await expect(https(`${base}/healthz`)).rejects.toThrow(/unable to verify the first certificate/);
    await expect(fetch(`http://127.0.0.1:${ingest.port}/healthz`)).rejects.toThrow();
  }, 60_000);

  it.each([
    [
      { HTTP_TLS_CERT: '/tmp/cert.pem' },
      'HTTP_TLS_CERT and HTTP_TLS_KEY go together: give both for HTTPS or neither for HTTP (HTTP_TLS_CERT is set, HTTP_TLS_KEY is not set)',
    ],
    [
      { HTTP_TLS_KEY: '/tmp/key.pem' },
      'HTTP_TLS_CERT and HTTP_TLS_KEY go together: give both for HTTPS or neither for HTTP (HTTP_TLS_CERT is not set, HTTP_TLS_KEY is set)',
    ],
    [
      { HTTP_TLS_CERT: '/nonexistent/cert.pem', HTTP_TLS_KEY: '/nonexistent/key.pem' },
      'HTTP_TLS_CERT = "/nonexistent/cert.pem" is invalid: the certificate file cannot be read',
    ],
    [{ MESH_API_KEYS_FILE: '/nonexistent/keys.json' }, 'MESH_API_KEYS_FILE = "/nonexistent/keys.json" is invalid: cannot read /nonexistent/keys.json'],
    [{ MESH_METRICS_AUTH: 'secret' }, 'MESH_METRICS_AUTH (apiKeys.metricsAuth) = "secret" is invalid'],
  ])(
    'exits 2 at start-up with %j, naming the problem',
    async (env, message) => {
      const run = await runToExit('aggregator', { NATS_URL: server.url, ...env });
      expect(run.code).toBe(2);
      expect(run.stderr).toContain(message);
    },
    20_000,
  );
});
