/**
 * `npm start -- --secure`: the local mesh as production runs it. The `mesh`
 * CLI generates (once, kept in <data>/secure) a least-privilege nats-server
 * config with TLS and one nkey identity per service; the admin identity
 * provisions the streams, buckets and consumers; each service then runs as
 * its own user with MESH_PROVISION=false, and the HTTP APIs require an API
 * key: new ones printed at every start (one to send and query, one with the
 * admin scope for the console).
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { RepoRoot } from '@mesh/testing';

const run = promisify(execFile);

export const Identities = ['admin', 'ingest', 'router', 'processor', 'aggregator', 'sink', 'console'] as const;
/** One of Identities, or a handler service of the repo (each its own NATS user). */
export type Identity = (typeof Identities)[number] | (string & {});

export interface SecureMesh {
  /** The generated nats-server.conf (authorization with one user per identity, TLS with verified clients). */
  serverConfig: string;
  /** The NATS_* variables of an identity: its seed file, CA, client certificate and key. */
  env(identity: Identity): Record<string, string>;
  /** The API key file the services check. */
  apiKeysFile: string;
}

/** `KEY=VALUE` lines, as `mesh nats-config` writes them. */
export function parseEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) throw new Error(`not a KEY=VALUE line: ${JSON.stringify(line)}`);
    out[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return out;
}

async function mesh(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  try {
    const { stdout } = await run(process.execPath, [join(RepoRoot, 'tools', 'mesh', 'dist', 'main.js'), ...args], { env, cwd: RepoRoot });
    return stdout;
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`mesh ${args[0]} failed: ${(e.stderr ?? e.message).trim()}`, { cause: err });
  }
}

/**
 * Generate the identities and certificates unless an earlier start did (for
 * the same handler services: a new one means new identities for all).
 */
export async function prepareSecureMesh(
  dataDir: string,
  partitions: number,
  env: NodeJS.ProcessEnv,
  handlerServices: readonly string[] = [],
): Promise<SecureMesh & { generated: boolean }> {
  const dir = join(dataDir, 'secure');
  const natsDir = join(dir, 'nats');
  const serverConfig = join(natsDir, 'nats-server.conf');
  const identities: Identity[] = [...Identities, ...handlerServices];
  const complete = existsSync(serverConfig) && identities.every((i) => existsSync(join(natsDir, `${i}.env`)));
  if (!complete) {
    const extra = handlerServices.length > 0 ? ['--handler-service', handlerServices.join(',')] : [];
    await mesh(['nats-config', '--out', natsDir, '--tls', '--partitions', String(partitions), ...extra, ...(existsSync(natsDir) ? ['--force'] : [])], env);
  }
  const envs = new Map<Identity, Record<string, string>>(identities.map((i) => [i, parseEnvFile(readFileSync(join(natsDir, `${i}.env`), 'utf8'))]));
  return { serverConfig, env: (i) => ({ ...envs.get(i)! }), apiKeysFile: join(dir, 'api-keys.json'), generated: !complete };
}

/** Create or update the streams, buckets and consumers (the handler services' too) as the admin identity. */
export async function provisionAsAdmin(secure: SecureMesh, natsUrl: string, env: NodeJS.ProcessEnv, handlerServices: readonly string[] = []): Promise<void> {
  const extra = handlerServices.length > 0 ? ['--handler-service', handlerServices.join(',')] : [];
  await mesh(['provision', '--nats', natsUrl, ...extra], { ...env, ...secure.env('admin') });
}

async function createKey(secure: SecureMesh, env: NodeJS.ProcessEnv, name: string, scopes: string): Promise<string> {
  const out = await mesh(['apikey', 'create', '--name', name, '--scopes', scopes, '--file', secure.apiKeysFile], env);
  const key = out.trim().split('\n').pop() ?? '';
  if (!/^\S+$/.test(key)) throw new Error('mesh apikey create printed no key on its last line');
  return key;
}

/**
 * A fresh key file holding this session's keys (each shown once): `key`
 * sends events and reads results, `consoleKey` (admin) is what the console
 * asks for before it shows or changes anything.
 */
export async function newApiKeys(secure: SecureMesh, env: NodeJS.ProcessEnv): Promise<{ key: string; consoleKey: string }> {
  rmSync(secure.apiKeysFile, { force: true });
  return { key: await createKey(secure, env, 'dev', 'ingest,query'), consoleKey: await createKey(secure, env, 'console', 'admin') };
}
