/**
 * `npm start`: the whole mesh on this machine. Uses the NATS server at
 * NATS_URL when one answers; otherwise starts a local nats-server with
 * JetStream (data in .data/nats, or MESH_DEV_DATA_DIR). Then runs the four
 * services (HTTP ports from MESH_DEV_PORT_BASE, default 8080-8083), waits
 * until they are ready and says where to send events and read results.
 *
 * Ctrl-C stops everything it started, in order: nats-server and the services
 * run in process groups of their own, so the terminal's SIGINT reaches only
 * this process; it stops the services by their pids (SIGTERM, and waits:
 * they finish their work, release their leases and drain while NATS is still
 * up), then nats-server last.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { NatsServerBinary, RepoRoot, ServiceNodeOptions, startNatsServer, type NatsServer } from '@mesh/testing';
import { devSettings, serviceEnv } from './dev-settings';
import { hasExited, stopChild } from './stop-child';

/** Start order; `offset` from the port base. The processor declares the handlers the router waits for, so it comes first. */
const services = [
  { name: 'processor', offset: 2 },
  { name: 'ingest', offset: 0 },
  { name: 'router', offset: 1 },
  { name: 'aggregator', offset: 3 },
] as const;

/** How long a service may take to stop before it is killed; above its own shutdown of idle work, below what Ctrl-C should feel like. */
const ServiceStopGraceMs = 10_000;

const settings = devSettings(process.env, RepoRoot);
const natsUrl = settings.natsUrl;
const portOf = (name: (typeof services)[number]['name']) => settings.portBase + services.find((s) => s.name === name)!.offset;

function say(text: string) {
  process.stdout.write(`[mesh] ${text}\n`);
}

async function natsAnswers(url: string): Promise<'jetstream' | 'no-jetstream' | 'none'> {
  try {
    const nc = await connect({ servers: url.split(','), timeout: 1_000, reconnect: false });
    try {
      await (await jetstreamManager(nc)).getAccountInfo();
      return 'jetstream';
    } catch {
      return 'no-jetstream';
    } finally {
      await nc.close();
    }
  } catch {
    return 'none';
  }
}

function prefixLines(name: string, stream: NodeJS.ReadableStream, out: NodeJS.WritableStream) {
  let rest = '';
  stream.on('data', (chunk: Buffer) => {
    const lines = (rest + chunk.toString()).split('\n');
    rest = lines.pop() ?? '';
    for (const line of lines) out.write(`[${name.padEnd(10)}] ${line}\n`);
  });
}

async function waitReady(name: string, port: number, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${name} exited with code ${child.exitCode}`);
    try {
      if ((await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${name} was not ready within 60 s (see its log above)`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

interface ServiceChild {
  name: string;
  port: number;
  child: ChildProcess;
  /** Set before stopping it on purpose (a restart): its exit then stops nothing else. */
  planned: boolean;
}

let server: NatsServer | undefined;
const children: ServiceChild[] = [];
let stopped: Promise<void> | undefined;

/**
 * Stop everything this process started, services first (by pid, all at once,
 * each waited for), nats-server last, then exit with `code`. Called again, it
 * changes nothing; a child that already exited is skipped.
 */
function stopAll(code: number): Promise<void> {
  stopped ??= (async () => {
    say('stopping...');
    await Promise.all(
      children.map(({ name, child }) =>
        stopChild(child, ServiceStopGraceMs, () => say(`${name} did not stop within ${ServiceStopGraceMs / 1000} s; killing it`)).catch(() => undefined),
      ),
    );
    await server?.stop().catch((err: Error) => say(`stopping nats-server: ${err.message}`));
    server = undefined;
    say('stopped');
    process.exit(code);
  })();
  return stopped;
}

// The children are in process groups of their own: should this process end
// without stopAll (an uncaught error), they must not outlive it.
process.on('exit', () => {
  for (const { child } of children) if (!hasExited(child)) child.kill('SIGTERM');
  try {
    if (server) process.kill(server.pid, 'SIGTERM');
  } catch {
    // already gone
  }
});
process.on('SIGINT', () => void stopAll(0));
process.on('SIGTERM', () => void stopAll(0));

function startService(name: string, port: number): ServiceChild {
  const child = spawn(process.execPath, [join(RepoRoot, 'services', name, 'dist', 'main.js')], {
    env: { NODE_OPTIONS: ServiceNodeOptions, ...serviceEnv(process.env), NATS_URL: natsUrl, HTTP_PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const record: ServiceChild = { name, port, child, planned: false };
  prefixLines(name, child.stdout!, process.stdout);
  prefixLines(name, child.stderr!, process.stderr);
  child.once('exit', (code, signal) => {
    if (stopped || record.planned) return;
    say(`${name} exited with ${code ?? signal}; stopping the rest`);
    void stopAll(1);
  });
  return record;
}

async function main() {
  const state = await natsAnswers(natsUrl);
  if (state === 'no-jetstream') {
    throw new Error(`the NATS server at ${natsUrl} has JetStream disabled; start it with -js, or point NATS_URL elsewhere`);
  }
  if (state === 'none') {
    const u = new URL(natsUrl.split(',')[0].replace(/^nats:/, 'http:'));
    if (!['127.0.0.1', 'localhost'].includes(u.hostname)) throw new Error(`no NATS server answers at ${natsUrl}, and it is not local, so none is started`);
    if (!existsSync(NatsServerBinary)) {
      throw new Error(`no NATS server answers at ${natsUrl} and ${NatsServerBinary} is missing: install it (Debian: apt-get install nats-server)`);
    }
    const storeDir = settings.dataDir;
    const shown = relative(RepoRoot, storeDir).startsWith('..') ? storeDir : relative(RepoRoot, storeDir);
    mkdirSync(storeDir, { recursive: true });
    say(`no NATS at ${natsUrl}; starting nats-server with JetStream (data in ${shown})`);
    server = await startNatsServer({ port: Number(u.port || 4222), storeDir, detached: true });
    say(`nats-server running, pid ${server.pid}`);
  } else {
    say(`using the NATS server at ${natsUrl}`);
  }

  for (const s of services) {
    const started = startService(s.name, portOf(s.name));
    children.push(started);
    if (s.name === 'processor') await waitReady(s.name, started.port, started.child);
  }
  await Promise.all(children.map((c) => waitReady(c.name, c.port, c.child)));

  const ingest = `http://127.0.0.1:${portOf('ingest')}`;
  const aggregator = `http://127.0.0.1:${portOf('aggregator')}`;
  say('the mesh is ready.');
  say('send an event:');
  say(`  curl -i -X POST ${ingest}/v1/events -H 'content-type: application/cloudevents+json' \\`);
  say(`    -d '{"specversion":"1.0","id":"order-1","source":"shop","type":"order.created","partitionkey":"customer-42","data":{"orderId":"order-1","amount":25}}'`);
  say('read its aggregate:');
  say(`  curl ${aggregator}/v1/aggregates/totals/customer-42`);
  say(`health: ${services.map((s) => `http://127.0.0.1:${portOf(s.name)}/readyz`).sort().join(' ')}`);
  say('Ctrl-C stops everything.');
}

main().catch((err: Error) => {
  if (stopped) return;
  process.stderr.write(`[mesh] ${err.message}\n`);
  void stopAll(1);
});
