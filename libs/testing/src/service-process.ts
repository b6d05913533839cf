/**
 * Runs a mesh service as a real process (its built `dist/main.js`), as a
 * user would, for end-to-end and fault tests. Each process is stopped by its
 * own pid.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';
import { waitForExit } from './nats-server';

/** The four services of the pipeline, which startMesh starts. */
export type ServiceName = 'ingest' | 'router' | 'processor' | 'aggregator';
/** Every service startService can run: the pipeline's, the sink (which needs MESH_SINK_POSTGRES_URL) and the console. */
export type AnyServiceName = ServiceName | 'sink' | 'console';

export const RepoRoot = resolve(__dirname, '../../..');

/** A service process of any kind: a built-in service, or a handler service run from its built main (startProcess). */
export interface ProcessHandle {
  readonly name: string;
  readonly pid: number;
  /** `http://127.0.0.1:<port>` of its HTTP server. */
  readonly url: string;
  readonly port: number;
  /** Everything it wrote so far. */
  output(): string;
  waitReady(timeoutMs?: number): Promise<void>;
  /** SIGTERM and wait for exit; resolves to the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL and wait for exit. */
  kill(): Promise<void>;
  exited(): Promise<number | null>;
  /** The signal that ended it (`SIGKILL`, say), once it has exited; null if it exited by itself or still runs. */
  exitSignal(): NodeJS.Signals | null;
}

export interface ServiceProcess extends ProcessHandle {
  readonly name: AnyServiceName;
}

/**
 * Runtime flags the services run with (also in deploy/Dockerfile and
 * `npm start`): a young generation of 2 x 8 MB instead of 2 x 16 MB took
 * 15-23 MB off each service's peak RSS at saturation with no loss of
 * throughput (bench, interleaved runs); 4 MB cost 10-15% of it.
 */
export const ServiceNodeOptions = '--max-semi-space-size=8';

export async function startService(name: AnyServiceName, env: Record<string, string>, options: { waitReady?: boolean } = {}): Promise<ServiceProcess> {
  return (await startProcess(name, join(RepoRoot, 'services', name, 'dist', 'main.js'), env, options)) as ServiceProcess;
}

/** Run the built `main` (a handler service's `dist/main.js`, say) as service `name`, like startService. */
export async function startProcess(name: string, main: string, env: Record<string, string>, options: { waitReady?: boolean } = {}): Promise<ProcessHandle> {
  const child: ChildProcess = spawn(process.execPath, [main], {
    env: { PATH: process.env.PATH ?? '', HTTP_PORT: '0', HTTP_HOST: '127.0.0.1', LOG_LEVEL: 'info', NODE_OPTIONS: ServiceNodeOptions, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const exit = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));

  const port = await new Promise<number>((resolvePort, reject) => {
    const fail = (err: Error) => {
      child.kill('SIGKILL');
      reject(err);
    };
    const timer = setTimeout(() => fail(new Error(`${name} did not open its HTTP port within 15 s:\n${out}`)), 15_000);
    const check = () => {
      const m = /"msg":"http listening","port":(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        child.stdout!.off('data', check);
        resolvePort(Number(m[1]));
      }
    };
    child.stdout!.on('data', check);
    void exit.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with code ${code} before listening:\n${out}`));
    });
  });

  const proc: ProcessHandle = {
    name,
    pid: child.pid!,
    port,
    url: `http://127.0.0.1:${port}`,
    output: () => out,
    async waitReady(timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        try {
          const res = await fetch(`${proc.url}/readyz`);
          if (res.status === 200) return;
        } catch {
          // not up yet
        }
        if (child.exitCode !== null) throw new Error(`${name} exited with code ${child.exitCode}:\n${out}`);
        if (Date.now() > deadline) throw new Error(`${name} was not ready within ${timeoutMs} ms:\n${out.slice(-4000)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await waitForExit(child);
      return child.exitCode;
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await waitForExit(child);
    },
    exited: () => exit,
    exitSignal: () => child.signalCode,
  };
  if (options.waitReady ?? true) {
    try {
      await proc.waitReady();
    } catch (err) {
      await proc.kill(); // never leave a child behind a failed start
      throw err;
    }
  }
  return proc;
}

/** Start the four services against one NATS server. */
export async function startMesh(natsUrl: string, env: Record<string, string> = {}): Promise<Record<ServiceName, ServiceProcess>> {
  const common = { NATS_URL: natsUrl, ...env };
  // The processor first: it declares the handlers the router routes to.
  const processor = await startService('processor', common);
  const rest = await Promise.allSettled([startService('ingest', common), startService('router', common), startService('aggregator', common)]);
  const started = rest.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = rest.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    // Leave nothing running behind a failed start.
    await stopAll([processor, ...started]);
    throw failed.reason;
  }
  const [ingest, router, aggregator] = started;
  return { ingest, router, processor, aggregator };
}

export async function stopAll(procs: Iterable<ProcessHandle | undefined>): Promise<void> {
  await Promise.all([...procs].map((p) => p?.stop() ?? Promise.resolve(null)));
}
