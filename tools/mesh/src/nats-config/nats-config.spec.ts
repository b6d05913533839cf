import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../cli';
import { MemoryOutput } from '../output';

describe('mesh nats-config (files only)', () => {
  let root: string;
  beforeEach(() => (root = mkdtempSync(join(tmpdir(), 'mesh-nats-config-unit-'))));
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  const run = async (args: string[], env: Record<string, string> = {}) => {
    const out = new MemoryOutput();
    const code = await runCli(['nats-config', ...args], env, out);
    return { code, out };
  };

  it('writes nkey users and env files with no TLS material when --tls is not given, and needs no NATS', async () => {
    const dir = join(root, 'conf');
    // NATS_URL names a closed port: nothing connects.
    const { code } = await run(['--out', dir, '--partitions', '2'], { NATS_URL: 'nats://127.0.0.1:1' });
    expect(code).toBe(0);
    expect(existsSync(join(dir, 'tls'))).toBe(false);
    expect(readFileSync(join(dir, 'router.env'), 'utf8')).toBe(`NATS_NKEY_SEED_FILE=${join(dir, 'router.nk')}\n`);
    const conf = readFileSync(join(dir, 'nats-server.conf'), 'utf8');
    // admin, ingest, router, processor, aggregator, sink and console.
    expect(conf.match(/nkey: "U[A-Z2-7]{55}"/g)).toHaveLength(7);
    expect(conf).not.toContain('tls {');
    expect(conf).toContain('"$JS.API.CONSUMER.MSG.NEXT.MESH_INGEST.router-p01"');
    expect(conf).not.toContain('router-p02');
  });

  it('refuses a directory that holds anything, and replaces its secrets only with --force', async () => {
    const dir = join(root, 'conf');
    mkdirSync(dir);
    writeFileSync(join(dir, 'keep.txt'), 'x');
    const refused = await run(['--out', dir]);
    expect(refused.code).toBe(1);
    expect(refused.out.stderr).toEqual([
      `mesh: ${dir} is not empty (keep.txt); writing there would replace its secrets: give an empty or new directory, or --force to generate new ones`,
    ]);
    expect(existsSync(join(dir, 'nats-server.conf'))).toBe(false);

    expect((await run(['--out', dir, '--force'])).code).toBe(0);
    const seed = readFileSync(join(dir, 'admin.nk'), 'utf8');
    expect((await run(['--out', dir])).code).toBe(1);
    expect(readFileSync(join(dir, 'admin.nk'), 'utf8')).toBe(seed);
    expect((await run(['--out', dir, '--force'])).code).toBe(0);
    expect(readFileSync(join(dir, 'admin.nk'), 'utf8')).not.toBe(seed);
  });
});
