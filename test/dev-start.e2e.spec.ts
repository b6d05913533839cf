/**
 * `npm start` (tools/dev/dist/start.js) as a developer uses it: it starts its
 * own nats-server, the four services and the console, serves an event end to end, and a
 * Ctrl-C in the terminal (SIGINT to the whole foreground process group) stops
 * everything quickly, quietly and completely, in order: the services first,
 * by start.js and while NATS is up (so they release their leases and leave
 * the member list), nats-server last.
 */

/** Keys left in a bucket of the store, read through a fresh nats-server. */
async function keysLeft(storeDir: string, bucket: string): Promise<string[]> {
  const server = await startNatsServer({ storeDir });
  const nc = await connect({ servers: server.url });
  try {
    const keys: string[] = [];
    for await (const k of await (await new Kvm(nc).open(bucket)).keys()) keys.push(k);
    return keys.sort();
  } finally {
    await nc.close();
    await server.stop();
  }
}
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, utimesSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import { Buckets } from '@mesh/contracts';
import { eventually, orderEvent, postEvents, RepoRoot, startNatsServer, totalsOf } from '@mesh/testing';

/** Whether something accepts connections on this loopback port. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(true));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(false)));
  });
}

/** A port base with five free ports from it (the four services and the console), and a free port for NATS outside them. */
async function freePorts(): Promise<{ base: number; nats: number }> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 30_000);
    const nats = base + 10;
    const taken = await Promise.all([base, base + 1, base + 2, base + 3, base + 4, nats].map(listening));
    if (!taken.some(Boolean)) return { base, nats };
  }
  throw new Error('found no six free ports');
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('npm start (tools/dev/dist/start.js)', () => {
  let child: ChildProcess | undefined;
  let dataDir: string;

  beforeAll(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'mesh-dev-start-'));
  });
  afterAll(() => {
    // Only if the test failed half way: stop what is left of its process group.
    if (child?.pid && child.exitCode === null && child.signalCode === null) process.kill(-child.pid, 'SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('serves an event end to end, and a Ctrl-C stops every process it started within 3 s, exiting 0 and printing no error or warning', async () => {
    const ports = await freePorts();
    // Detached like a shell's foreground job: its own process group, which Ctrl-C signals as a whole.
    child = spawn(process.execPath, [join(RepoRoot, 'tools', 'dev', 'dist', 'start.js')], {
      cwd: RepoRoot,
      env: {
        PATH: process.env.PATH ?? '',
        NATS_URL: `nats://127.0.0.1:${ports.nats}`,
        MESH_DEV_DATA_DIR: dataDir,
        MESH_DEV_PORT_BASE: String(ports.base),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let out = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
      child!.once('exit', (code, signal) => resolve({ code, signal, at: Date.now() })),
    );

    const ready = await eventually(async () => out.includes('the mesh is ready') || child!.exitCode !== null, 120_000, 100);
    expect({ ready, exitCode: child.exitCode }).toEqual({ ready: true, exitCode: null });
    const natsPid = Number(/nats-server running, pid (\d+)/.exec(out)?.[1]);
    expect(alive(natsPid)).toBe(true);
    expect(out).toContain(`http://127.0.0.1:${ports.base}/v1/events`);
    expect(out).toContain(`console: http://127.0.0.1:${ports.base + 4}/`);
    const page = await fetch(`http://127.0.0.1:${ports.base + 4}/`);
    expect([page.status, page.headers.get('content-type')]).toEqual([200, 'text/html; charset=utf-8']);

    const ingest = `http://127.0.0.1:${ports.base}`;
    const aggregator = `http://127.0.0.1:${ports.base + 3}`;
    await postEvents(ingest, [orderEvent('dev-start', 1, 25)], 'single');
    let totals = { count: 0, sum: 0 };
    await eventually(async () => (totals = await totalsOf(aggregator, 'dev-start')).count === 1, 30_000);
    expect(totals).toEqual({ count: 1, sum: 25 });

    const before = out.length;
    const signalledAt = Date.now();
    process.kill(-child.pid!, 'SIGINT');
    let timer: NodeJS.Timeout | undefined;
    const exit = await Promise.race([exited, new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), 10_000)))]);
    clearTimeout(timer);
    const after = out.slice(before);

    expect(exit && { code: exit.code, signal: exit.signal, withinMs: exit.at - signalledAt < 3_000 }).toEqual({ code: 0, signal: null, withinMs: true });
    expect(after.split('\n').filter((l) => /error|warn|Warning/i.test(l))).toEqual([]);
    expect(after).toContain('[mesh] stopped');
    // Each service was stopped by start.js (SIGTERM), not by the terminal's SIGINT.
    const shutdowns = [...after.matchAll(/"service":"(\w+)".*"msg":"shutting down","signal":"(\w+)"/g)].map((m) => `${m[1]}:${m[2]}`).sort();
    expect(shutdowns).toEqual(['aggregator:SIGTERM', 'console:SIGTERM', 'ingest:SIGTERM', 'processor:SIGTERM', 'router:SIGTERM']);
    expect(alive(natsPid)).toBe(false);
    const stillListening = [];
    for (const port of [ports.base, ports.base + 1, ports.base + 2, ports.base + 3, ports.base + 4, ports.nats])
      if (await listening(port)) stillListening.push(port);
    expect(stillListening).toEqual([]);
    // NATS was still there when they left: nothing of them is left in the store.
    expect({ leases: await keysLeft(dataDir, Buckets.leases), members: await keysLeft(dataDir, Buckets.members) }).toEqual({ leases: [], members: [] });
  });

  it('--secure runs every service as its own NATS user over TLS, requires the printed API key, and stops cleanly', async () => {
    const ports = await freePorts();
    const secureDir = mkdtempSync(join(tmpdir(), 'mesh-dev-secure-'));
    child = spawn(process.execPath, [join(RepoRoot, 'tools', 'dev', 'dist', 'start.js'), '--secure'], {
      cwd: RepoRoot,
      env: { PATH: process.env.PATH ?? '', NATS_URL: `nats://127.0.0.1:${ports.nats}`, MESH_DEV_DATA_DIR: secureDir, MESH_DEV_PORT_BASE: String(ports.base) },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let out = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
    const exited = new Promise<{ code: number | null; at: number }>((resolve) => child!.once('exit', (code) => resolve({ code, at: Date.now() })));
    try {
      const ready = await eventually(async () => out.includes('the mesh is ready') || child!.exitCode !== null, 120_000, 100);
      expect({ ready, exitCode: child.exitCode }).toEqual({ ready: true, exitCode: null });
      const key = /export MESH_KEY=(\S+)/.exec(out)?.[1] ?? '';
      expect(key).toMatch(/^mesh_[0-9a-f]+_\S+$/);
      const natsPid = Number(/running at tls:\/\/127\.0\.0\.1:\d+, pid (\d+)/.exec(out)?.[1]);
      expect(alive(natsPid)).toBe(true);
      // The services connected with their own identities and created nothing themselves.
      expect(out).toMatch(/"service":"ingest".*"msg":"connecting to NATS".*"as":"nkey seed file [^"]*ingest\.nk and client certificate [^"]*ingest-cert\.pem"/);

      const ingest = `http://127.0.0.1:${ports.base}`;
      const aggregator = `http://127.0.0.1:${ports.base + 3}`;
      const post = (headers: Record<string, string>) =>
        fetch(`${ingest}/v1/events`, {
          method: 'POST',
          headers: { 'content-type': 'application/cloudevents+json', ...headers },
          body: JSON.stringify(orderEvent('dev-secure', 1, 25)),
        });
      expect((await post({})).status).toBe(401);
      expect((await post({ authorization: `Bearer ${key}` })).status).toBe(202);
      let body: { windows?: { count: number; sum: number }[] } = {};
      const counted = await eventually(async () => {
        const res = await fetch(`${aggregator}/v1/aggregates/totals/dev-secure`, { headers: { authorization: `Bearer ${key}` } });
        body = res.status === 200 ? ((await res.json()) as typeof body) : {};
        return (body.windows ?? []).reduce((n, w) => n + w.count, 0) === 1;
      }, 30_000);
      expect({ counted, windows: body.windows?.map((w) => ({ count: w.count, sum: w.sum })) }).toEqual({ counted: true, windows: [{ count: 1, sum: 25 }] });

      // The console, as its own NATS user, reads the whole mesh; it answers only the printed admin key.
      const consoleKey = /console: http:\/\/127\.0\.0\.1:\d+\/ \(asks for this admin key, replaced at every start: (\S+)\)/.exec(out)?.[1] ?? '';
      expect(consoleKey).toMatch(/^mesh_[0-9a-f]+_\S+$/);
      const picture = (headers: Record<string, string>) => fetch(`http://127.0.0.1:${ports.base + 4}/api/picture`, { headers });
      expect((await picture({})).status).toBe(401);
      expect((await picture({ authorization: `Bearer ${key}` })).status).toBe(403);
      let seen: { problems?: string[]; partitions?: unknown[] | null; services?: { name: string; instances: unknown[] }[] } = {};
      await eventually(async () => {
        const res = await picture({ authorization: `Bearer ${consoleKey}` });
        seen = res.status === 200 ? ((await res.json()) as typeof seen) : {};
        return (seen.partitions?.length ?? 0) > 0 && (seen.services ?? []).filter((s) => s.instances.length > 0).length === 4;
      }, 30_000);
      expect(seen.problems).toEqual([]);
      expect(out).not.toMatch(/[Pp]ermission[s]? [Vv]iolation/);

      const signalledAt = Date.now();
      process.kill(-child.pid!, 'SIGINT');
      const exit = await exited;
      expect({ code: exit.code, withinMs: exit.at - signalledAt < 5_000 }).toEqual({ code: 0, withinMs: true });
      expect(alive(natsPid)).toBe(false);
      const stillListening = [];
      for (const port of [ports.base, ports.base + 1, ports.base + 2, ports.base + 3, ports.base + 4]) if (await listening(port)) stillListening.push(port);
      expect(stillListening).toEqual([]);
    } finally {
      rmSync(secureDir, { recursive: true, force: true });
    }
  });

  it('a saved change in a service rebuilds and restarts that service only, and the mesh goes on serving', async () => {
    const ports = await freePorts();
    const watchDir = mkdtempSync(join(tmpdir(), 'mesh-dev-watch-'));
    child = spawn(process.execPath, [join(RepoRoot, 'tools', 'dev', 'dist', 'start.js')], {
      cwd: RepoRoot,
      env: { PATH: process.env.PATH ?? '', NATS_URL: `nats://127.0.0.1:${ports.nats}`, MESH_DEV_DATA_DIR: watchDir, MESH_DEV_PORT_BASE: String(ports.base) },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let out = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
    const exited = new Promise<number | null>((resolve) => child!.once('exit', (code) => resolve(code)));
    const instance = async (port: number) => ((await (await fetch(`http://127.0.0.1:${port}/healthz`)).json()) as { instance: string }).instance;
    try {
      const ready = await eventually(async () => out.includes('Ctrl-C stops everything') || child!.exitCode !== null, 120_000, 100);
      expect({ ready, exitCode: child.exitCode }).toEqual({ ready: true, exitCode: null });
      const before = { ingest: await instance(ports.base), processor: await instance(ports.base + 2) };

      // What an editor's save does to the watcher: the file's times change.
      const source = join(RepoRoot, 'services', 'processor', 'src', 'handlers', 'orders.handler.ts');
      const now = new Date();
      utimesSync(source, now, now);
      const restarted = await eventually(async () => /restarted processor in/.test(out), 60_000, 100);
      expect({
        restarted,
        log: out
          .split('\n')
          .filter((l) => l.startsWith('[mesh] '))
          .slice(-3),
      }).toEqual({ restarted: true, log: expect.any(Array) });
      expect(out).toContain('changed: services/processor/src/handlers/orders.handler.ts; rebuilding');
      const after = { ingest: await instance(ports.base), processor: await instance(ports.base + 2) };
      expect(after.ingest).toBe(before.ingest);
      expect(after.processor).not.toBe(before.processor);

      await postEvents(`http://127.0.0.1:${ports.base}`, [orderEvent('dev-watch', 1, 7)], 'single');
      let totals = { count: 0, sum: 0 };
      await eventually(async () => (totals = await totalsOf(`http://127.0.0.1:${ports.base + 3}`, 'dev-watch')).count === 1, 30_000);
      expect(totals).toEqual({ count: 1, sum: 7 });
      expect(out).not.toMatch(/exited with .*; stopping the rest/);

      process.kill(-child.pid!, 'SIGINT');
      expect(await exited).toBe(0);
    } finally {
      rmSync(watchDir, { recursive: true, force: true });
    }
  });
});
