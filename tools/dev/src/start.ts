/**
 * `npm start`: the whole mesh on this machine. Uses the NATS server at
 * NATS_URL when one answers; otherwise starts a local nats-server with
 * JetStream (data in .data/nats, or MESH_DEV_DATA_DIR). Then runs the four
 * services, the console (HTTP ports from MESH_DEV_PORT_BASE, default
 * 8080-8084) and every handler service of the repo (handler-services.ts; on
 * its own default port, 8090 and up, shifted like the others), waits until
 * they are ready and says where to send events, read results and open the
 * console.
 *
 * `npm start -- --secure` runs it as production would (see secure-mesh.ts):
 * its own nats-server with a generated least-privilege config and TLS, one
 * NATS identity per service, provisioning by the admin identity, and API
 * keys on the HTTP APIs (two printed at start: one to send and query, one
 * with the admin scope for the console).
 *
 * While it runs it watches the sources (watch-sources.ts): a saved change
 * rebuilds (tsc -b, incremental) and restarts only the services whose code
 * changed, all of them for a library; a failed build leaves them running.
 * `--no-watch` turns that off.
 *
 * Ctrl-C stops everything it started, in order: nats-server and the services
 * run in process groups of their own, so the terminal's SIGINT reaches only
 * this process; it stops the services by their pids (SIGTERM, and waits:
 * they finish their work, release their leases and drain while NATS is still
 * up), then nats-server last.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { jetstreamManager } from '@nats-io/jetstream';
import { connectNats, credentialsFromEnv, NatsCredentialsError, NatsRefusedError, redactUrl } from '@mesh/messaging';
import { NatsServerBinary, RepoRoot, ServiceNodeOptions, startNatsServer, type NatsServer } from '@mesh/testing';
import { devSettings, serviceEnv } from './dev-settings';
import { newApiKeys, prepareSecureMesh, provisionAsAdmin, type Identity, type SecureMesh } from './secure-mesh';
import { handlerServicesIn } from './handler-services';
import { lineRenderer, logFormat } from './log-lines';
import { hasExited, stopChild } from './stop-child';
import { watchSources } from './watch-sources';

/** The handler services of the repo besides the processor: `services/*` tagged `type:handler-service`. */
const handlerServices = handlerServicesIn(RepoRoot);

/**
 * Start order; `offset` from the port base. The processor declares the
 * handlers the router waits for, so it comes first, then the other handler
 * services (ports 8090 and up: offset from 8080).
 */
const services: readonly { name: string; offset: number }[] = [
  { name: 'processor', offset: 2 },
  ...handlerServices.map((s) => ({ name: s.name, offset: s.port - 8080 })),
  { name: 'ingest', offset: 0 },
  { name: 'router', offset: 1 },
  { name: 'aggregator', offset: 3 },
  // Last: it shows the others, and acts on the mesh only when an operator asks.
  { name: 'console', offset: 4 },
  // The sink writes results to PostgreSQL, so it runs only when told where.
  ...(process.env.MESH_SINK_POSTGRES_URL ? [{ name: 'sink', offset: 5 }] : []),
];

/** How long a service may take to stop before it is killed; above its own shutdown of idle work, below what Ctrl-C should feel like. */
const ServiceStopGraceMs = 10_000;

function options(): { secure: boolean; watch: boolean } {
  try {
    const { values } = parseArgs({
      args: process.argv.slice(2),
      options: { secure: { type: 'boolean', default: false }, 'no-watch': { type: 'boolean', default: false } },
      strict: true,
      allowPositionals: false,
    });
    return { secure: values.secure === true, watch: values['no-watch'] !== true };
  } catch (err) {
    process.stderr.write(`[mesh] ${(err as Error).message}; npm start takes --secure and --no-watch (npm start -- --secure)\n`);
    process.exit(2);
  }
}

const { secure, watch } = options();
const settings = devSettings(process.env, RepoRoot);
let natsUrl = settings.natsUrl;
/** Set in --secure mode: the identities the services run as. */
let secured: SecureMesh | undefined;

/** The environment without NATS credentials of the caller's: in --secure mode each process gets its identity's. */
function withoutNatsCredentials(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out = { ...env };
  for (const name of Object.keys(out)) if (/^NATS_(USER|PASSWORD|TOKEN|NKEY|CREDS|TLS|INBOX)/.test(name)) delete out[name];
  return out;
}
const portOf = (name: string) => settings.portBase + services.find((s) => s.name === name)!.offset;

function say(text: string) {
  process.stdout.write(`[mesh] ${text}\n`);
}

/** Is a NATS server with JetStream at `url`? Connects with the NATS_* credentials of the environment. */
async function natsAnswers(url: string): Promise<'jetstream' | 'no-jetstream' | 'none'> {
  try {
    const nc = await connectNats({
      url,
      name: 'mesh-dev',
      credentials: credentialsFromEnv(process.env),
      waitOnFirstConnect: false,
      reconnect: false,
      attemptTimeoutMs: 1_000,
    });
    try {
      await (await jetstreamManager(nc)).getAccountInfo();
      return 'jetstream';
    } catch {
      return 'no-jetstream';
    } finally {
      await nc.close();
    }
  } catch (err) {
    // A server that refuses our credentials is there: say why rather than start another.
    if (err instanceof NatsCredentialsError || (err instanceof NatsRefusedError && !/cannot reach NATS/.test(err.message))) throw err;
    return 'none';
  }
}

/** Set first thing in main, where a bad MESH_LOG_FORMAT ends start-up with one line. */
let renderLine: ReturnType<typeof lineRenderer> = lineRenderer('json', false);

function prefixLines(name: string, stream: NodeJS.ReadableStream, out: NodeJS.WritableStream) {
  let rest = '';
  stream.on('data', (chunk: Buffer) => {
    const lines = (rest + chunk.toString()).split('\n');
    rest = lines.pop() ?? '';
    for (const line of lines) out.write(renderLine(name, line));
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
    stopWatching?.();
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
  const main = handlerServices.find((s) => s.name === name)?.main ?? join(RepoRoot, 'services', name, 'dist', 'main.js');
  const child = spawn(process.execPath, [main], {
    env: {
      NODE_OPTIONS: ServiceNodeOptions,
      ...(secured
        ? {
            ...withoutNatsCredentials(serviceEnv(process.env)),
            ...secured.env(name as Identity),
            MESH_PROVISION: 'false',
            MESH_API_KEYS_FILE: secured.apiKeysFile,
          }
        : serviceEnv(process.env)),
      NATS_URL: natsUrl,
      HTTP_PORT: String(port),
    },
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

/** A path relative to the repository when inside it. */
function shownPath(path: string): string {
  const rel = relative(RepoRoot, path);
  return rel.startsWith('..') ? path : rel;
}

/** Whether a TCP port on this host is taken. */
function portTaken(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(true));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(false)));
  });
}

/** --secure: a nats-server of its own with the generated config, provisioned by the admin identity. */
async function startSecureNats(): Promise<string> {
  const u = new URL(natsUrl.split(',')[0].replace(/^[a-z]+:/, 'http:'));
  if (!['127.0.0.1', 'localhost'].includes(u.hostname)) throw new Error(`--secure starts its own nats-server on this host; NATS_URL ${natsUrl} is not local`);
  if (!existsSync(NatsServerBinary)) throw new Error(`--secure needs ${NatsServerBinary}: install it (Debian: apt-get install nats-server)`);
  const partitions = Number(process.env.MESH_PARTITIONS || 16);
  const names = handlerServices.map((s) => s.name);
  const prepared = await prepareSecureMesh(settings.dataDir, partitions, withoutNatsCredentials(serviceEnv(process.env)), names);
  secured = prepared;
  say(
    prepared.generated
      ? `generated NATS identities, TLS certificates and a least-privilege config in ${shownPath(prepared.serverConfig)}`
      : `using the NATS identities in ${shownPath(prepared.serverConfig)}`,
  );
  // A server that is already there (unsecured, say) is left alone: take another port.
  const wanted = Number(u.port || 4222);
  const port = (await portTaken(wanted)) ? 0 : wanted;
  const storeDir = join(settings.dataDir, 'secure', 'store');
  mkdirSync(storeDir, { recursive: true });
  server = await startNatsServer({ port, storeDir, detached: true, args: ['-c', prepared.serverConfig] });
  const url = server.url;
  say(`nats-server with TLS and one user per service running at ${url}, pid ${server.pid}${port === 0 ? ` (port ${wanted} is taken)` : ''}`);
  await provisionAsAdmin(prepared, url, withoutNatsCredentials(serviceEnv(process.env)), names);
  say('provisioned the streams, buckets and consumers as the admin identity');
  return url;
}

async function main() {
  renderLine = lineRenderer(logFormat(process.env, process.stdout.isTTY === true), process.stdout.isTTY === true);
  if (secure) {
    natsUrl = await startSecureNats();
    const { key, consoleKey } = await newApiKeys(secured!, withoutNatsCredentials(serviceEnv(process.env)));
    await startAll();
    const ingest = `http://127.0.0.1:${portOf('ingest')}`;
    const aggregator = `http://127.0.0.1:${portOf('aggregator')}`;
    say('the mesh is ready, secured: every service is its own NATS user over TLS, and the HTTP APIs need an API key.');
    say(`API key (scopes ingest, query; ${shownPath(secured!.apiKeysFile)}, replaced at every start):`);
    say(`  export MESH_KEY=${key}`);
    say('send an event:');
    say(`  curl -i -X POST ${ingest}/v1/events -H "authorization: Bearer $MESH_KEY" -H 'content-type: application/cloudevents+json' \\`);
    say(
      `    -d '{"specversion":"1.0","id":"order-1","source":"shop","type":"order.created","partitionkey":"customer-42","data":{"orderId":"order-1","amount":25}}'`,
    );
    say('read its aggregate:');
    say(`  curl -H "authorization: Bearer $MESH_KEY" ${aggregator}/v1/aggregates/totals/customer-42`);
    say(`console: http://127.0.0.1:${portOf('console')}/ (asks for this admin key, replaced at every start: ${consoleKey})`);
    sayHandlerServices();
    say(`admin CLI: env $(cat ${shownPath(join(secured!.serverConfig, '..', 'admin.env'))} | xargs) NATS_URL=${natsUrl} npx mesh partitions`);
    startWatching();
    say('Ctrl-C stops everything.');
    return;
  }
  const state = await natsAnswers(natsUrl);
  if (state === 'no-jetstream') {
    throw new Error(`the NATS server at ${natsUrl} has JetStream disabled; start it with -js, or point NATS_URL elsewhere`);
  }
  if (state === 'none') {
    const u = new URL(natsUrl.split(',')[0].replace(/^nats:/, 'http:'));
    if (!['127.0.0.1', 'localhost'].includes(u.hostname))
      throw new Error(`no NATS server answers at ${redactUrl(natsUrl)}, and it is not local, so none is started`);
    if (!existsSync(NatsServerBinary)) {
      throw new Error(`no NATS server answers at ${redactUrl(natsUrl)} and ${NatsServerBinary} is missing: install it (Debian: apt-get install nats-server)`);
    }
    const storeDir = settings.dataDir;
    const shown = relative(RepoRoot, storeDir).startsWith('..') ? storeDir : relative(RepoRoot, storeDir);
    mkdirSync(storeDir, { recursive: true });
    say(`no NATS at ${redactUrl(natsUrl)}; starting nats-server with JetStream (data in ${shown})`);
    server = await startNatsServer({ port: Number(u.port || 4222), storeDir, detached: true });
    say(`nats-server running, pid ${server.pid}`);
  } else {
    say(`using the NATS server at ${redactUrl(natsUrl)}`);
  }

  await startAll();

  const ingest = `http://127.0.0.1:${portOf('ingest')}`;
  const aggregator = `http://127.0.0.1:${portOf('aggregator')}`;
  say('the mesh is ready.');
  say('send an event:');
  say(`  curl -i -X POST ${ingest}/v1/events -H 'content-type: application/cloudevents+json' \\`);
  say(
    `    -d '{"specversion":"1.0","id":"order-1","source":"shop","type":"order.created","partitionkey":"customer-42","data":{"orderId":"order-1","amount":25}}'`,
  );
  say('read its aggregate:');
  say(`  curl ${aggregator}/v1/aggregates/totals/customer-42`);
  say(`console: http://127.0.0.1:${portOf('console')}/`);
  sayHandlerServices();
  say(
    `health: ${services
      .map((s) => `http://127.0.0.1:${portOf(s.name)}/readyz`)
      .sort()
      .join(' ')}`,
  );
  startWatching();
  say('Ctrl-C stops everything.');
}

/** Where each handler service runs and what it takes. */
function sayHandlerServices(): void {
  for (const s of handlerServices)
    say(`handler service ${s.name} at http://127.0.0.1:${portOf(s.name)} (its handlers: GET /v1/handlers; npm run mesh -- handlers)`);
}

/** tsc -b of the whole workspace (incremental: only what changed); its output when it fails. */
function build(): Promise<{ ok: boolean; output: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(RepoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-b', join(RepoRoot, 'tsconfig.build.json')],
      { cwd: RepoRoot },
      (err, stdout, stderr) => resolve({ ok: err === null, output: `${stdout}${stderr}`.trim() }),
    );
  });
}

/** Stop one service on purpose and start it again on its port; the others go on. */
async function restart(name: string): Promise<void> {
  const index = children.findIndex((c) => c.name === name);
  if (index < 0) return;
  const old = children[index];
  old.planned = true;
  await stopChild(old.child, ServiceStopGraceMs, () => say(`${name} did not stop within ${ServiceStopGraceMs / 1000} s; killing it`));
  if (stopped) return;
  const fresh = startService(name, old.port);
  children[index] = fresh;
  await waitReady(name, fresh.port, fresh.child);
}

let rebuilding: Promise<void> | undefined;
let queued = new Set<string>();

/** Rebuild, then restart the changed services in start order; changes saved meanwhile wait for the next round. */
function rebuildAndRestart(changed: Set<string>, files: string[]): void {
  for (const name of changed) queued.add(name);
  if (rebuilding) return;
  rebuilding = (async () => {
    while (queued.size > 0 && !stopped) {
      const names = services.map((s) => s.name).filter((n) => queued.has(n));
      queued = new Set();
      const shown =
        files
          .slice(0, 3)
          .map((f) => f.split('\\').join('/'))
          .join(', ') + (files.length > 3 ? ', ...' : '');
      say(`changed: ${shown}; rebuilding`);
      const started = Date.now();
      const result = await build();
      if (!result.ok) {
        process.stdout.write(`${result.output}\n`);
        say('the build failed: the running services are left as they are; fix it and save again');
        continue;
      }
      for (const name of names) await restart(name);
      if (!stopped) say(`restarted ${names.join(', ')} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    }
  })()
    .catch((err: Error) => say(`restart failed: ${err.message}`))
    .finally(() => {
      rebuilding = undefined;
    });
}

let stopWatching: (() => void) | undefined;

function startWatching(): void {
  if (!watch) return;
  stopWatching = watchSources({ repoRoot: RepoRoot, services: services.map((s) => s.name), debounceMs: 300, onChange: rebuildAndRestart });
  say('watching services/*/src and libs/*/src: a saved change rebuilds and restarts the services it concerns (--no-watch: off)');
}

async function startAll(): Promise<void> {
  for (const s of services) {
    const started = startService(s.name, portOf(s.name));
    children.push(started);
    if (s.name === 'processor') await waitReady(s.name, started.port, started.child);
  }
  await Promise.all(children.map((c) => waitReady(c.name, c.port, c.child)));
}

main().catch((err: Error) => {
  if (stopped) return;
  process.stderr.write(`[mesh] ${err.message}\n`);
  void stopAll(1);
});
