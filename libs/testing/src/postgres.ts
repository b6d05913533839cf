/**
 * PostgreSQL for tests. Each test works in a database of its own, created
 * and dropped on the machine's server (TEST_POSTGRES_URL, default
 * `postgres://postgres@127.0.0.1:5432/postgres`, trust authentication), so
 * tests never see each other's rows. A test that must stop PostgreSQL runs
 * a private server instead (startPrivatePostgres): the machine's server is
 * shared.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'pg';

const run = promisify(execFile);

/** The server tests create their databases on (a database they may connect to, to create others). */
export const TestPostgresUrl = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface TestDatabase {
  readonly name: string;
  /** Connection URL of the database. */
  readonly url: string;
  /** Drop it, closing any connection still open to it. */
  drop(): Promise<void>;
}

/** The same server URL with another database. */
export function withDatabase(serverUrl: string, database: string): string {
  const u = new URL(serverUrl);
  u.pathname = `/${database}`;
  return u.toString();
}

async function adminQuery(serverUrl: string, sql: string): Promise<void> {
  const client = new Client({ connectionString: serverUrl, connectionTimeoutMillis: 5_000 });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** `CREATE DATABASE mesh_test_<random>` on `serverUrl`. */
export async function createTestDatabase(serverUrl = TestPostgresUrl): Promise<TestDatabase> {
  const name = `mesh_test_${randomBytes(6).toString('hex')}`;
  await adminQuery(serverUrl, `CREATE DATABASE ${name}`);
  return {
    name,
    url: withDatabase(serverUrl, name),
    // WITH (FORCE): a sink killed by the test may have left a connection behind.
    drop: () => adminQuery(serverUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`),
  };
}

export interface PrivatePostgres {
  readonly port: number;
  readonly dataDir: string;
  /** URL of the `postgres` database as user `postgres` (trust authentication). */
  readonly url: string;
  /** Pid of the postmaster while it runs. */
  pid(): number | undefined;
  /** `pg_ctl stop -m fast`: connections are cut, the server exits. */
  stop(): Promise<void>;
  /** Start again on the same port and data. */
  start(): Promise<void>;
  /** Stop it and remove its data directory. */
  destroy(): Promise<void>;
}

/** The directory of initdb, pg_ctl and postgres: the newest Debian install, or POSTGRES_BIN_DIR. */
export function postgresBinDir(): string | undefined {
  if (process.env.POSTGRES_BIN_DIR) return process.env.POSTGRES_BIN_DIR;
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions.length > 0 ? join(root, versions[0], 'bin') : undefined;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/**
 * A PostgreSQL server of the test's own: a temporary data directory, a free
 * port on 127.0.0.1, trust authentication. PostgreSQL refuses to run as
 * root, so under root it runs as the `postgres` user (runuser).
 */
export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const bin = postgresBinDir();
  if (!bin) throw new Error('no PostgreSQL server binaries in /usr/lib/postgresql/*/bin (Debian: apt-get install postgresql), nor POSTGRES_BIN_DIR');
  const asRoot = process.getuid?.() === 0;
  const as = async (cmd: string, args: string[]) => {
    const [file, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', join(bin, cmd), ...args]] : [join(bin, cmd), args];
    return run(file, argv, { timeout: 60_000 });
  };
  const dataDir = mkdtempSync(join(tmpdir(), 'mesh-pg-'));
  if (asRoot) {
    const uid = Number((await run('id', ['-u', 'postgres'])).stdout.trim());
    const gid = Number((await run('id', ['-g', 'postgres'])).stdout.trim());
    chownSync(dataDir, uid, gid);
  }
  const port = await freePort();
  await as('initdb', ['-D', dataDir, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8']);
  const pidFile = join(dataDir, 'postmaster.pid');
  const pid = () => {
    try {
      return Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
    } catch {
      return undefined;
    }
  };
  const start = async () => {
    await as('pg_ctl', [
      '-D',
      dataDir,
      '-w',
      '-t',
      '60',
      '-l',
      join(dataDir, 'server.log'),
      '-o',
      `-p ${port} -k ${dataDir} -c listen_addresses=127.0.0.1 -c fsync=off`,
      'start',
    ]);
  };
  const stop = async () => {
    if (pid() === undefined) return;
    await as('pg_ctl', ['-D', dataDir, '-w', '-t', '60', '-m', 'fast', 'stop']);
  };
  await start();
  return {
    port,
    dataDir,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    pid,
    stop,
    start,
    async destroy() {
      try {
        await stop();
      } catch {
        // pg_ctl failed: end the postmaster by its pid.
        const p = pid();
        if (p) process.kill(p, 'SIGKILL');
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
