/**
 * A service connects to a NATS server that requires credentials, with each
 * way of giving them (user and password, from env or a file; a token file;
 * an nkey seed file; a .creds file; mutual TLS), and start-up that cannot
 * succeed ends within 10 s with exit code 1 and one line on stderr naming
 * the cause: refused credentials, a missing creds file, a server
 * certificate of an unknown CA, a client certificate of another CA. No
 * secret appears in anything the service writes or serves. A permission
 * the server refuses at run time is logged with its subject and counted.
 */
import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createUser } from '@nats-io/nkeys';
import { startNatsServer, startService, orderEvent, type NatsServer, type ServiceName, type ServiceProcess } from '@mesh/testing';
import { runCli } from '../tools/mesh/src/cli';
import { MemoryOutput } from '../tools/mesh/src/output';
import { makeCa, makeLeaf, type CertFiles } from './support/openssl-certs';
import { runServiceToExit, type Exit } from './support/run-to-exit';

const EXIT_WITHIN_MS = 10_000;
const PASSWORD = 'pw-Zq81-never-shown';
const TOKEN = 'tok-Xy77-never-shown';

let dir: string;
const children = new Set<ChildProcess>();
const servers: NatsServer[] = [];
const services: ServiceProcess[] = [];

function file(name: string, content: string, mode = 0o600): string {
  const path = join(dir, name);
  writeFileSync(path, content, { mode });
  return path;
}

async function natsWith(config: string): Promise<NatsServer> {
  const server = await startNatsServer({ args: ['-c', file(`nats-${servers.length}.conf`, config)] });
  servers.push(server);
  return server;
}

/** Run a service to its exit (killed, code null, if it runs past the limit). */
const runToExit = (name: ServiceName, env: Record<string, string>): Promise<Exit> => runServiceToExit(name, env, EXIT_WITHIN_MS + 2_000, children);

/** Exit 1 within the limit, with exactly one line on stderr that matches `cause` and is no stack trace. */
function expectRefused(exit: Exit, cause: RegExp): void {
  expect({ code: exit.code, within: exit.ms < EXIT_WITHIN_MS }).toEqual({ code: 1, within: true });
  const lines = exit.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(cause);
  expect(exit.stderr).not.toMatch(/^\s+at /m);
}

async function start(name: ServiceName, env: Record<string, string>): Promise<ServiceProcess> {
  const proc = await startService(name, env);
  services.push(proc);
  return proc;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'mesh-creds-'));
});

afterEach(async () => {
  await Promise.all(services.splice(0).map((s) => s.kill()));
  for (const c of children) c.kill('SIGKILL');
});

afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  rmSync(dir, { recursive: true, force: true });
});

describe('user and password', () => {
  let server: NatsServer;
  beforeAll(async () => {
    server = await natsWith(`authorization { users = [ { user: mesh, password: "${PASSWORD}" } ] }\n`);
  });

  it('connects with NATS_USER and NATS_PASSWORD, and shows the password nowhere', async () => {
    const ingest = await start('ingest', { NATS_URL: server.url, NATS_USER: 'mesh', NATS_PASSWORD: PASSWORD });
    const ready = await (await fetch(`${ingest.url}/readyz`)).text();
    expect(JSON.parse(ready).ready).toBe(true);
    expect(ready + ingest.output()).not.toContain(PASSWORD);
    expect(ingest.output()).toContain("user 'mesh'");
  });

  it('connects with the password in NATS_PASSWORD_FILE', async () => {
    const ingest = await start('ingest', { NATS_URL: server.url, NATS_USER: 'mesh', NATS_PASSWORD_FILE: file('password', `${PASSWORD}\n`) });
    expect((await fetch(`${ingest.url}/readyz`)).status).toBe(200);
  });

  it('masks a password given inside NATS_URL in its logs', async () => {
    const url = server.url.replace('nats://', `nats://mesh:${PASSWORD}@`);
    const ingest = await start('ingest', { NATS_URL: url });
    expect(ingest.output()).toContain('nats://mesh:***@127.0.0.1');
    expect(ingest.output()).not.toContain(PASSWORD);
  });

  it('exits 1 with one line when the password is wrong, without showing it', async () => {
    const exit = await runToExit('router', { NATS_URL: server.url, NATS_USER: 'mesh', NATS_PASSWORD: 'wrong-Qq3-secret' });
    expectRefused(exit, /^router: NATS at nats:\/\/127\.0\.0\.1:\d+ refused the credentials \(user 'mesh'\): Authorization Violation$/);
    expect(exit.stdout + exit.stderr).not.toContain('wrong-Qq3-secret');
  });

  it('exits 1 with one line when no credentials are given', async () => {
    expectRefused(await runToExit('processor', { NATS_URL: server.url }), /refused the credentials \(no credentials\)/);
  });

  it('exits 1 naming the file when NATS_PASSWORD_FILE does not exist', async () => {
    const exit = await runToExit('aggregator', { NATS_URL: server.url, NATS_USER: 'mesh', NATS_PASSWORD_FILE: join(dir, 'absent') });
    expectRefused(exit, /^aggregator: NATS_PASSWORD_FILE: cannot read the password file .*absent \(ENOENT\)$/);
  });

  it('mesh provision takes --user and --password, and says in one line when they are refused', async () => {
    const out = new MemoryOutput();
    expect(await runCli(['provision', '--nats', server.url, '--user', 'mesh', '--password', 'nope'], {}, out)).toBe(1);
    expect(out.stderr).toEqual([expect.stringMatching(/^mesh: NATS at .* refused the credentials \(user 'mesh'\)/)]);
    const ok = new MemoryOutput();
    expect(await runCli(['provision', '--nats', server.url, '--user', 'mesh', '--password', PASSWORD], {}, ok)).toBe(0);
    expect(ok.text).toMatch(/stream\s+MESH_INGEST/);
    expect(ok.text).toMatch(/48 \(router, processor, aggregator x 16 partitions\)/);
  });
});

describe('token, nkey and creds file', () => {
  it('connects with NATS_TOKEN_FILE', async () => {
    const server = await natsWith(`authorization { token: "${TOKEN}" }\n`);
    const ingest = await start('ingest', { NATS_URL: server.url, NATS_TOKEN_FILE: file('token', TOKEN) });
    expect((await fetch(`${ingest.url}/readyz`)).status).toBe(200);
    expect(ingest.output()).not.toContain(TOKEN);
  });

  it('connects with NATS_NKEY_SEED_FILE and with NATS_CREDS, and refuses a missing creds file', async () => {
    const user = createUser();
    const seed = new TextDecoder().decode(user.getSeed());
    const server = await natsWith(`authorization { users = [ { nkey: ${user.getPublicKey()} } ] }\n`);
    const ingest = await start('ingest', { NATS_URL: server.url, NATS_NKEY_SEED_FILE: file('user.nk', `${seed}\n`) });
    expect((await fetch(`${ingest.url}/readyz`)).status).toBe(200);
    expect(ingest.output()).not.toContain(seed);

    // Outside operator mode the server checks the creds file's nkey signature, which is what the client sends from it.
    const creds = file(
      'user.creds',
      '-----BEGIN NATS USER JWT-----\neyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.e30.x\n------END NATS USER JWT------\n\n' +
        `-----BEGIN USER NKEY SEED-----\n${seed}\n------END USER NKEY SEED------\n`,
    );
    const second = await start('ingest', { NATS_URL: server.url, NATS_CREDS: creds });
    expect((await fetch(`${second.url}/readyz`)).status).toBe(200);
    expect(second.output()).toContain('creds file');

    const missing = await runToExit('processor', { NATS_URL: server.url, NATS_CREDS: join(dir, 'gone.creds') });
    expectRefused(missing, /^processor: NATS_CREDS: cannot read the creds file .*gone\.creds \(ENOENT\)$/);
  });
});

describe('TLS', () => {
  let server: NatsServer;
  let ca: CertFiles;
  let client: CertFiles;
  let otherCa: CertFiles;
  let otherClient: CertFiles;

  beforeAll(async () => {
    ca = makeCa(dir, 'ca');
    otherCa = makeCa(dir, 'other-ca');
    const serverCert = makeLeaf(dir, 'server', ca);
    client = makeLeaf(dir, 'client', ca);
    otherClient = makeLeaf(dir, 'other-client', otherCa);
    server = await natsWith(`tls { cert_file: "${serverCert.cert}", key_file: "${serverCert.key}", ca_file: "${ca.cert}", verify: true }\n`);
  });

  it('connects with mutual TLS', async () => {
    const ingest = await start('ingest', { NATS_URL: server.url, NATS_TLS_CA: ca.cert, NATS_TLS_CERT: client.cert, NATS_TLS_KEY: client.key });
    expect((await fetch(`${ingest.url}/readyz`)).status).toBe(200);
  });

  it('exits 1 when the server certificate is not signed by NATS_TLS_CA', async () => {
    const exit = await runToExit('ingest', { NATS_URL: server.url, NATS_TLS_CA: otherCa.cert, NATS_TLS_CERT: client.cert, NATS_TLS_KEY: client.key });
    expectRefused(exit, /^ingest: TLS with NATS at .* failed: the server's certificate is not trusted by the CA in NATS_TLS_CA/);
  });

  it('exits 1 when the server refuses a client certificate of another CA', async () => {
    const exit = await runToExit('router', { NATS_URL: server.url, NATS_TLS_CA: ca.cert, NATS_TLS_CERT: otherClient.cert, NATS_TLS_KEY: otherClient.key });
    expectRefused(exit, /^router: TLS with NATS at .* failed: the server refused the client certificate NATS_TLS_CERT/);
  });

  it('exits 1 when NATS_TLS_CERT is given without NATS_TLS_KEY', async () => {
    const exit = await runToExit('aggregator', { NATS_URL: server.url, NATS_TLS_CA: ca.cert, NATS_TLS_CERT: client.cert });
    expectRefused(exit, /NATS_TLS_CERT and NATS_TLS_KEY go together/);
  });
});

describe('waiting, provisioning and permissions', () => {
  it('says every few seconds that it waits for NATS, then starts when NATS comes up', async () => {
    const port = await freePort();
    const ingest = await startService('ingest', { NATS_URL: `nats://127.0.0.1:${port}` }, { waitReady: false });
    services.push(ingest);
    const deadline = Date.now() + 9_000;
    while (!/"msg":"waiting for NATS"/.test(ingest.output()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(ingest.output()).toMatch(/"msg":"waiting for NATS","url":"nats:\/\/127\.0\.0\.1:\d+","reason":"connection refused"/);
    const server = await startNatsServer({ port });
    servers.push(server);
    await ingest.waitReady(15_000);
  });

  it('with MESH_PROVISION=false creates nothing, says what is missing, and starts once `mesh provision` ran', async () => {
    const server = await startNatsServer();
    servers.push(server);
    const exit = await runToExit('aggregator', { NATS_URL: server.url, MESH_PROVISION: 'false' });
    expectRefused(
      exit,
      /^aggregator: the mesh is not provisioned: missing stream MESH_PROCESSED, stream MESH_AGGREGATES, stream MESH_DLQ, bucket mesh_aggregates, .*run `npm run mesh -- provision`/,
    );
    const out = new MemoryOutput();
    expect(await runCli(['provision', '--nats', server.url], {}, out)).toBe(0);
    const aggregator = await start('aggregator', { NATS_URL: server.url, MESH_PROVISION: 'false' });
    expect((await fetch(`${aggregator.url}/readyz`)).status).toBe(200);
  });

  it('logs a refused publish with its subject and counts it in mesh_nats_permission_violations_total', async () => {
    // Everything but storing events: ingest's publishes to mesh.ingest.> are refused.
    const server = await natsWith(
      `authorization { users = [ { user: admin, password: "${PASSWORD}" }, ` +
        `{ user: ingest, password: "${PASSWORD}", permissions: { publish: { allow: [">"], deny: ["mesh.ingest.>"] }, subscribe: { allow: [">"] } } } ] }\n`,
    );
    const admin = new MemoryOutput();
    expect(await runCli(['provision', '--nats', server.url, '--user', 'admin', '--password', PASSWORD], {}, admin)).toBe(0);
    const ingest = await start('ingest', { NATS_URL: server.url, NATS_USER: 'ingest', NATS_PASSWORD: PASSWORD, MESH_PROVISION: 'false' });
    const res = await fetch(`${ingest.url}/v1/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/cloudevents+json' },
      body: JSON.stringify(orderEvent('perm-key', 1, 5)),
      signal: AbortSignal.timeout(20_000),
    }).catch((err: Error) => err);
    expect(res instanceof Error ? res.name : res.status).not.toBe(202);
    const deadline = Date.now() + 10_000;
    while (!/nats permission violation/.test(ingest.output()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(ingest.output()).toMatch(/"msg":"nats permission violation","operation":"publish","subject":"mesh\.ingest\.\d+\.order\.created"/);
    const metrics = await (await fetch(`${ingest.url}/metrics`)).text();
    expect(metrics).toMatch(/mesh_nats_permission_violations_total\{[^}]*operation="publish"[^}]*\} [1-9]/);
  });
});
