/**
 * Starts a real nats-server for a test: JetStream on, loopback only, an
 * ephemeral port and a temporary store. Never the server on 4222.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const NatsServerBinary = process.env.NATS_SERVER_BIN ?? (process.platform === 'linux' ? '/usr/sbin/nats-server' : 'nats-server');

export interface NatsServerOptions {
  /** Port; 0 (default) lets the server pick one. */
  port: number;
  /** Store directory; default a new temporary one, removed on stop. */
  storeDir: string;
  /** Extra command-line arguments (a config file with `-c`, say). */
  args: string[];
  /** Print the server's log (for debugging a test). */
  verbose: boolean;
}

export interface NatsServer {
  /** `nats://127.0.0.1:<port>`, or `tls://...` when the server requires TLS (a config with a `tls {}` block). */
  readonly url: string;
  /** Whether the server requires TLS of its clients. */
  readonly tls: boolean;
  /** What the server logged so far, over all its runs (errors, permission violations). */
  output(): string;
  readonly port: number;
  readonly storeDir: string;
  readonly pid: number;
  /** SIGTERM (lame duck not used) and wait for exit; removes a temporary store. */
  stop(): Promise<void>;
  /** SIGKILL and wait for exit; keeps the store for a restart. */
  kill(): Promise<void>;
  /** Start again on the same port with the same store. */
  restart(): Promise<void>;
}

function waitForListening(child: ChildProcess, timeoutMs: number, onLog: (text: string) => void): Promise<{ port: number; tls: boolean }> {
  return new Promise((resolve, reject) => {
    let log = '';
    const timer = setTimeout(() => reject(new Error(`nats-server did not start within ${timeoutMs} ms:\n${log}`)), timeoutMs);
    const onData = (chunk: Buffer) => {
      log += chunk.toString();
      const m = /Listening for client connections on [^\s]+:(\d+)/.exec(log);
      if (m && /Server is ready/.test(log)) {
        clearTimeout(timer);
        child.stderr?.off('data', onData);
        child.stdout?.off('data', onData);
        resolve({ port: Number(m[1]), tls: /TLS required for client connections/.test(log) });
      }
    };
    // Every line, for output(): also what comes after readiness.
    child.stderr?.on('data', (chunk: Buffer) => onLog(chunk.toString()));
    child.stdout?.on('data', (chunk: Buffer) => onLog(chunk.toString()));
    child.stderr?.on('data', onData);
    child.stdout?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`nats-server exited with code ${code} before it was ready:\n${log}`));
    });
  });
}

export function waitForExit(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

export async function startNatsServer(options: Partial<NatsServerOptions> = {}): Promise<NatsServer> {
  const ownStore = options.storeDir === undefined;
  const storeDir = options.storeDir ?? mkdtempSync(join(tmpdir(), 'mesh-nats-'));
  let port = options.port ?? 0;
  let tls = false;
  let log = '';
  let child!: ChildProcess;

  const launch = async () => {
    const args = ['-a', '127.0.0.1', '-p', String(port === 0 ? -1 : port), '-js', '-sd', storeDir, ...(options.args ?? [])];
    child = spawn(NatsServerBinary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    if (options.verbose) {
      child.stderr?.pipe(process.stderr);
    }
    ({ port, tls } = await waitForListening(child, 15_000, (text) => (log += text)));
  };
  await launch();

  const server: NatsServer = {
    get url() {
      return `${tls ? 'tls' : 'nats'}://127.0.0.1:${port}`;
    },
    get tls() {
      return tls;
    },
    output: () => log,
    get port() {
      return port;
    },
    storeDir,
    get pid() {
      return child.pid!;
    },
    async stop() {
      child.kill('SIGTERM');
      await waitForExit(child);
      if (ownStore) rmSync(storeDir, { recursive: true, force: true });
    },
    async kill() {
      child.kill('SIGKILL');
      await waitForExit(child);
    },
    async restart() {
      if (child.exitCode === null && child.signalCode === null) await server.kill();
      await launch();
    },
  };
  return server;
}
