/**
 * `npm start`: the whole mesh on this machine. Uses the NATS server at
 * NATS_URL when one answers; otherwise starts a local nats-server with
 * JetStream (data in .data/nats). Then runs the four services, waits until
 * they are ready and says where to send events and read results.
 * Ctrl-C stops everything it started.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { NatsServerBinary, RepoRoot, ServiceNodeOptions, startNatsServer, type NatsServer } from '@mesh/testing';

const services = [
  { name: 'processor', port: 8082 },
  { name: 'ingest', port: 8080 },
  { name: 'router', port: 8081 },
  { name: 'aggregator', port: 8083 },
] as const;

const natsUrl = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';

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

async function main() {
  let server: NatsServer | undefined;
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
    const storeDir = join(RepoRoot, '.data', 'nats');
    mkdirSync(storeDir, { recursive: true });
    say(`no NATS at ${natsUrl}; starting nats-server with JetStream (data in .data/nats)`);
    server = await startNatsServer({ port: Number(u.port || 4222), storeDir });
    say(`nats-server running, pid ${server.pid}`);
  } else {
    say(`using the NATS server at ${natsUrl}`);
  }

  const children: { name: string; child: ChildProcess }[] = [];
  let stopping = false;
  const stopAll = async (code: number) => {
    if (stopping) return;
    stopping = true;
    say('stopping...');
    await Promise.all(
      children.map(
        ({ child }) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once('exit', () => resolve());
            child.kill('SIGTERM');
          }),
      ),
    );
    if (server) await server.stop();
    say('stopped');
    process.exit(code);
  };
  process.on('SIGINT', () => void stopAll(0));
  process.on('SIGTERM', () => void stopAll(0));

  for (const s of services) {
    const child = spawn(process.execPath, [join(RepoRoot, 'services', s.name, 'dist', 'main.js')], {
      env: { NODE_OPTIONS: ServiceNodeOptions, ...process.env, NATS_URL: natsUrl, HTTP_PORT: String(s.port) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    prefixLines(s.name, child.stdout!, process.stdout);
    prefixLines(s.name, child.stderr!, process.stderr);
    child.once('exit', (code) => {
      if (!stopping) {
        say(`${s.name} exited with code ${code}; stopping the rest`);
        void stopAll(1);
      }
    });
    children.push({ name: s.name, child });
    // The processor declares the handlers the router waits for.
    if (s.name === 'processor') await waitReady(s.name, s.port, child);
  }
  await Promise.all(services.map((s, i) => waitReady(s.name, s.port, children[i].child)));

  say('the mesh is ready.');
  say('send an event:');
  say(`  curl -i -X POST http://127.0.0.1:8080/v1/events -H 'content-type: application/cloudevents+json' \\`);
  say(`    -d '{"specversion":"1.0","id":"order-1","source":"shop","type":"order.created","partitionkey":"customer-42","data":{"orderId":"order-1","amount":25}}'`);
  say('read its aggregate:');
  say('  curl http://127.0.0.1:8083/v1/aggregates/totals/customer-42');
  say('health: http://127.0.0.1:808{0,1,2,3}/readyz   Ctrl-C stops everything.');
}

main().catch((err: Error) => {
  process.stderr.write(`[mesh] ${err.message}\n`);
  process.exit(1);
});
