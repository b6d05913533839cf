/**
 * A nats-server secured as the README says to run one, for tests and the
 * bench: `mesh nats-config --tls` writes one least-privilege nkey identity
 * per service and certificates; the server requires TLS with verified client
 * certificates; the admin identity provisions the mesh (`mesh provision`).
 * Services then run with `env(service)` and MESH_PROVISION=false.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { readEnvFile } from './credentials';
import { startNatsServer, type NatsServer } from './nats-server';
import { RepoRoot } from './service-process';

const run = promisify(execFile);

export const SecureIdentities = ['admin', 'ingest', 'router', 'processor', 'aggregator'] as const;
export type SecureIdentity = (typeof SecureIdentities)[number];

export interface SecureNats {
  server: NatsServer;
  /** Where the config, seeds and certificates are. */
  dir: string;
  /** The NATS_* variables of an identity (seed file, CA, client certificate and key). */
  env(identity: SecureIdentity): Record<string, string>;
  /** Stop the server and remove the generated secrets. */
  stop(): Promise<void>;
}

/** Run the built `mesh` CLI; a failure says which command and what it printed. */
export async function runMeshCli(args: string[], env: Record<string, string>): Promise<string> {
  try {
    const { stdout } = await run(process.execPath, [join(RepoRoot, 'tools', 'mesh', 'dist', 'main.js'), ...args], {
      env: { PATH: process.env.PATH ?? '', ...env },
      cwd: RepoRoot,
    });
    return stdout;
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`mesh ${args[0]} failed: ${(e.stderr ?? e.message).trim()}`, { cause: err });
  }
}

export async function startSecureNats(o: { partitions?: number; port?: number } = {}): Promise<SecureNats> {
  const dir = mkdtempSync(join(tmpdir(), 'mesh-secure-nats-'));
  const partitions = o.partitions ?? 16;
  let server: NatsServer | undefined;
  try {
    await runMeshCli(['nats-config', '--out', dir, '--tls', '--force', '--partitions', String(partitions)], {});
    server = await startNatsServer({ port: o.port ?? 0, args: ['-c', join(dir, 'nats-server.conf')] });
    const envs = new Map(SecureIdentities.map((i) => [i, readEnvFile(join(dir, `${i}.env`))]));
    await runMeshCli(['provision', '--nats', server.url], { ...envs.get('admin')!, MESH_PARTITIONS: String(partitions) });
    const started = server;
    return {
      server: started,
      dir,
      env: (i) => ({ ...envs.get(i)! }),
      async stop() {
        await started.stop();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
