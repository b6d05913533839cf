/**
 * Starts a real 3-node nats-server cluster for a test: JetStream on every
 * node with its own temporary file store, loopback only, free ports, routes
 * between all nodes. Resolves once every node is healthy and a JetStream meta
 * leader answers, so an R3 stream can be created at once. Never the server
 * on 4222. The topology of deploy/nats/, shrunk onto one host.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JetStreamApiCodes, JetStreamApiError, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { NatsServerBinary, waitForExit } from './nats-server';

export interface NatsClusterOptions {
  /** Cluster name (the `cluster { name }` every node shares); default "mesh-test". */
  name: string;
  /** Longest wait for the cluster (and for a restarted node) to be ready, in ms; default 30 s. */
  readyTimeoutMs: number;
  /** Print the servers' logs on stderr (for debugging a test). */
  verbose: boolean;
}

export interface NatsClusterNode {
  /** Its `server_name`: n1, n2 or n3 (what stream info names as leader). */
  readonly name: string;
  /** `nats://127.0.0.1:<port>` */
  readonly url: string;
  /** Client port; the same after a restart. */
  readonly port: number;
  /** Route port; the same after a restart. */
  readonly clusterPort: number;
  /** HTTP monitoring port (/healthz, /jsz, /routez). */
  readonly monitorPort: number;
  /** Its JetStream store; kept across kill, stop and restart, removed by the cluster's stop(). */
  readonly storeDir: string;
  /** Pid of the current process (of the last one, once it exited). */
  readonly pid: number;
  /** True from start until the process exits. */
  readonly running: boolean;
  /** What the server logged since it was last (re)started. */
  log(): string;
  /** SIGKILL and wait for the exit: a crash. Keeps the store. */
  kill(): Promise<void>;
  /** SIGTERM and wait for the exit (SIGKILL if it takes over 15 s). Keeps the store. */
  stop(): Promise<void>;
  /**
   * Start again with the same ports, name and store (killing it first if it
   * runs). Resolves when it listens; `waitHealthy()` then waits until it has
   * caught up with the cluster, which needs a quorum of running nodes.
   */
  restart(): Promise<void>;
  /** Wait until /healthz answers 200: in contact with the meta leader and current. */
  waitHealthy(timeoutMs?: number): Promise<void>;
}

export interface NatsCluster {
  readonly name: string;
  /** Client URLs of all nodes, comma-separated (as NATS_URL takes them). */
  readonly urls: string;
  readonly nodes: readonly NatsClusterNode[];
  /** The node named `name` (n1, n2, n3). */
  node(name: string): NatsClusterNode;
  /**
   * The name of the running node leading `stream`, waiting (up to
   * `timeoutMs`, default 30 s) while the stream has no leader, say during the
   * election after its leader died. Throws at once if the stream does not exist.
   */
  leaderOf(stream: string, timeoutMs?: number): Promise<string>;
  /** Stop every node (SIGTERM, then SIGKILL after 15 s) and remove the stores. */
  stop(): Promise<void>;
}

const NODE_COUNT = 3;
const STOP_GRACE_MS = 15_000;
const LOG_KEEP_CHARS = 64 * 1024;

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Distinct free loopback ports: every socket stays bound until all are, so
 * no two are the same. Another process may still take one before the server
 * binds it; startNatsCluster then tries again with new ports.
 */
async function freePorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const server = createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolve());
      });
    }
    return servers.map((s) => (s.address() as AddressInfo).port);
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((r) => (s.listening ? s.close(() => r()) : r()))));
  }
}

class PortInUseError extends Error {}

interface NodeSpec {
  name: string;
  port: number;
  clusterPort: number;
  monitorPort: number;
  storeDir: string;
  configFile: string;
}

function nodeConfig(spec: NodeSpec, clusterName: string, peers: readonly NodeSpec[]): string {
  const routes = peers.filter((p) => p.name !== spec.name).map((p) => `nats-route://127.0.0.1:${p.clusterPort}`);
  return [
    `server_name: ${spec.name}`,
    `listen: "127.0.0.1:${spec.port}"`,
    `http: "127.0.0.1:${spec.monitorPort}"`,
    `jetstream { store_dir: ${JSON.stringify(spec.storeDir)} }`,
    'cluster {',
    `  name: ${JSON.stringify(clusterName)}`,
    `  listen: "127.0.0.1:${spec.clusterPort}"`,
    `  routes: [${routes.join(', ')}]`,
    '}',
    '',
  ].join('\n');
}

/** Resolves when the server logs that it is ready; rejects if it exits first or takes too long. */
function waitForReady(child: ChildProcess, name: string, output: () => string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = () => {
      clearTimeout(timer);
      child.stderr?.off('data', check);
      child.off('exit', onExit);
      child.off('error', onError);
    };
    const check = () => {
      if (/Server is ready/.test(output())) {
        done();
        resolve();
      }
    };
    const onError = (err: Error) => {
      done();
      reject(new Error(`nats-server ${name} could not be started (${NatsServerBinary}): ${err.message}`));
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
      done();
      const log = output();
      const Err = /address already in use/.test(log) ? PortInUseError : Error;
      reject(new Err(`nats-server ${name} exited (${signal ?? `code ${code}`}) before it was ready:\n${log}`));
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`nats-server ${name} was not ready within ${timeoutMs} ms:\n${output()}`));
    }, timeoutMs);
    child.stderr?.on('data', check);
    child.once('exit', onExit);
    child.once('error', onError);
    check();
  });
}

async function healthz(monitorPort: number): Promise<{ status: number; text: string }> {
  try {
    const res = await fetch(`http://127.0.0.1:${monitorPort}/healthz`, { signal: AbortSignal.timeout(2_000) });
    return { status: res.status, text: await res.text() };
  } catch (err) {
    return { status: 0, text: (err as Error).message };
  }
}

class ClusterNode implements NatsClusterNode {
  private child?: ChildProcess;
  private lastPid = 0;
  private output = '';

  constructor(
    private readonly spec: NodeSpec,
    private readonly options: NatsClusterOptions,
  ) {}

  get name() {
    return this.spec.name;
  }
  get url() {
    return `nats://127.0.0.1:${this.spec.port}`;
  }
  get port() {
    return this.spec.port;
  }
  get clusterPort() {
    return this.spec.clusterPort;
  }
  get monitorPort() {
    return this.spec.monitorPort;
  }
  get storeDir() {
    return this.spec.storeDir;
  }
  get pid() {
    return this.lastPid;
  }
  get running() {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  log(): string {
    return this.output;
  }

  async start(): Promise<void> {
    this.output = '';
    const child = spawn(NatsServerBinary, ['-c', this.spec.configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.lastPid = child.pid ?? 0;
    // Keep reading (and only the tail) so a full pipe never blocks the server.
    const collect = (chunk: Buffer) => {
      this.output = (this.output + chunk.toString()).slice(-LOG_KEEP_CHARS);
      if (this.options.verbose) process.stderr.write(chunk.toString().replace(/^(?=.)/gm, `[${this.spec.name}] `));
    };
    child.stderr!.on('data', collect);
    child.stdout!.on('data', collect);
    await waitForReady(child, this.spec.name, () => this.output, this.options.readyTimeoutMs);
  }

  async kill(): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    child.kill('SIGKILL');
    await waitForExit(child);
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    child.kill('SIGTERM');
    const escalate = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
    await waitForExit(child);
    clearTimeout(escalate);
  }

  async restart(): Promise<void> {
    await this.kill();
    await this.start();
  }

  async waitHealthy(timeoutMs = this.options.readyTimeoutMs): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (!this.running) throw new Error(`nats-server ${this.name} is not running:\n${this.output}`);
      const { status, text } = await healthz(this.spec.monitorPort);
      if (status === 200) return;
      if (Date.now() > deadline) {
        throw new Error(`nats-server ${this.name} was not healthy within ${timeoutMs} ms (last /healthz: ${status} ${text}):\n${this.output.slice(-4000)}`);
      }
      await delay(100);
    }
  }
}

/**
 * Poll `$JS.API.INFO` through a connection to the running nodes until the
 * meta leader answers it (until then the servers answer 503 or not at all).
 */
async function waitForMetaLeader(urls: string[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const nc = await connect({ servers: urls, timeout: 2_000, reconnect: false }).catch((err: Error) => {
      last = err.message;
      return undefined;
    });
    if (nc) {
      try {
        const jsm = await jetstreamManager(nc, { timeout: 2_000 });
        await jsm.getAccountInfo();
        return;
      } catch (err) {
        last = (err as Error).message;
      } finally {
        await nc.close();
      }
    }
    if (Date.now() > deadline) throw new Error(`the NATS cluster had no JetStream meta leader within ${timeoutMs} ms (last: ${last})`);
    await delay(200);
  }
}

async function launch(root: string, o: NatsClusterOptions): Promise<ClusterNode[]> {
  const ports = await freePorts(NODE_COUNT * 3);
  const specs: NodeSpec[] = Array.from({ length: NODE_COUNT }, (_, i) => ({
    name: `n${i + 1}`,
    port: ports[i * 3],
    clusterPort: ports[i * 3 + 1],
    monitorPort: ports[i * 3 + 2],
    storeDir: join(root, `n${i + 1}`),
    configFile: join(root, `n${i + 1}.conf`),
  }));
  for (const spec of specs) {
    mkdirSync(spec.storeDir, { recursive: true });
    writeFileSync(spec.configFile, nodeConfig(spec, o.name, specs));
  }
  const nodes = specs.map((spec) => new ClusterNode(spec, o));
  try {
    await Promise.all(nodes.map((n) => n.start()));
    await Promise.all(nodes.map((n) => n.waitHealthy()));
    await waitForMetaLeader(
      nodes.map((n) => n.url),
      o.readyTimeoutMs,
    );
    return nodes;
  } catch (err) {
    await Promise.all(nodes.map((n) => n.kill()));
    throw err;
  }
}

export async function startNatsCluster(options: Partial<NatsClusterOptions> = {}): Promise<NatsCluster> {
  const o: NatsClusterOptions = { name: 'mesh-test', readyTimeoutMs: 30_000, verbose: false, ...options };
  const root = mkdtempSync(join(tmpdir(), 'mesh-nats-cluster-'));
  let nodes: ClusterNode[] | undefined;
  try {
    for (let attempt = 1; !nodes; attempt++) {
      try {
        nodes = await launch(root, o);
      } catch (err) {
        // A free port taken by someone else in the meantime: new ports, clean stores.
        if (!(err instanceof PortInUseError) || attempt >= 3) throw err;
        rmSync(root, { recursive: true, force: true });
        mkdirSync(root);
      }
    }
  } catch (err) {
    rmSync(root, { recursive: true, force: true });
    throw err;
  }
  const all = nodes;

  const cluster: NatsCluster = {
    name: o.name,
    urls: all.map((n) => n.url).join(','),
    nodes: all,
    node(name) {
      const found = all.find((n) => n.name === name);
      if (!found) throw new Error(`no node named ${JSON.stringify(name)} in the cluster; the nodes are ${all.map((n) => n.name).join(', ')}`);
      return found;
    },
    async leaderOf(stream, timeoutMs = o.readyTimeoutMs) {
      const deadline = Date.now() + timeoutMs;
      let last = '';
      for (;;) {
        const running = all.filter((n) => n.running);
        const nc = await connect({ servers: running.map((n) => n.url), timeout: 2_000, reconnect: false }).catch((err: Error) => {
          last = err.message;
          return undefined;
        });
        if (nc) {
          try {
            const jsm = await jetstreamManager(nc, { timeout: 2_000, checkAPI: false });
            const leader = (await jsm.streams.info(stream)).cluster?.leader;
            // The meta group may still name a leader that just died: only a running node counts.
            if (leader && running.some((n) => n.name === leader)) return leader;
            last = leader ? `${leader} is named leader but is not running` : 'no leader';
          } catch (err) {
            if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound) throw err;
            last = (err as Error).message;
          } finally {
            await nc.close();
          }
        }
        if (Date.now() > deadline) throw new Error(`stream ${stream} had no leader among the running nodes within ${timeoutMs} ms (last: ${last})`);
        await delay(200);
      }
    },
    async stop() {
      await Promise.all(all.map((n) => n.stop()));
      rmSync(root, { recursive: true, force: true });
    },
  };
  return cluster;
}
