/**
 * `mesh apikey ...` through runCli, as an operator types it: no NATS server
 * is running here, so these also prove the commands need none.
 */
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { keyIdOf, keyMatches, parseKeyFile } from '@mesh/runtime';
import { runCli } from './cli';
import { MemoryOutput } from './output';

async function mesh(args: string[], env: Record<string, string> = {}) {
  const out = new MemoryOutput();
  // An unreachable NATS URL: an apikey command that tried to connect would fail.
  const code = await runCli(args, { NATS_URL: 'nats://127.0.0.1:1', ...env }, out);
  return { code, out };
}

describe('mesh apikey', () => {
  let file: string;
  beforeEach(() => {
    file = join(mkdtempSync(join(tmpdir(), 'apikey-')), 'keys.json');
  });

  it('creates the file with mode 0600, keeps only a hash, and prints the key once as the last line', async () => {
    const { code, out } = await mesh([
      'apikey',
      'create',
      '--name',
      'shop',
      '--scopes',
      'ingest,query',
      '--file',
      file,
      '--sources',
      'shop,pos',
      '--types',
      'order.*',
    ]);
    expect(code).toBe(0);
    const key = out.stdout[out.stdout.length - 1];
    expect(key).toMatch(/^mesh_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    expect(out.stdout.filter((l) => l.includes(key))).toHaveLength(1);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const text = readFileSync(file, 'utf8');
    expect(text).not.toContain(key);
    const [entry] = parseKeyFile(text).keys;
    expect(entry).toMatchObject({ name: 'shop', id: keyIdOf(key), scopes: ['ingest', 'query'], sources: ['shop', 'pos'], types: ['order.*'] });
    expect(keyMatches(key, entry.hash)).toBe(true);
  });

  it('lists names, scopes, restrictions and creation time, never a key or a hash', async () => {
    const created = await mesh(['apikey', 'create', '--name', 'shop', '--scopes', 'ingest', '--file', file, '--types', 'order.created']);
    await mesh(['apikey', 'create', '--name', 'dash', '--scopes', 'query'], { MESH_API_KEYS_FILE: file });
    const key = created.out.stdout[created.out.stdout.length - 1];
    const { code, out } = await mesh(['apikey', 'ls', '--file', file]);
    expect(code).toBe(0);
    expect(out.stdout[0]).toMatch(/^NAME\s+ID\s+SCOPES\s+SOURCES\s+TYPES\s+CREATED$/);
    expect(out.stdout[1]).toMatch(/^shop\s+[0-9a-f]{16}\s+ingest\s+any\s+order\.created\s+\d{4}-\d\d-\d\dT/);
    expect(out.stdout[2]).toMatch(/^dash\s+[0-9a-f]{16}\s+query\s+any\s+any\s+/);
    expect(out.text).not.toContain(key.slice(22));
    expect(out.text).not.toMatch(/sha256/);
    const json = await mesh(['apikey', 'ls', '--file', file, '--json']);
    expect(json.out.json<{ keys: { name: string }[] }>().keys.map((k) => k.name)).toEqual(['shop', 'dash']);
    expect(json.out.text).not.toMatch(/sha256|hash/);
  });

  it('revokes a key by name', async () => {
    await mesh(['apikey', 'create', '--name', 'shop', '--scopes', 'ingest', '--file', file]);
    await mesh(['apikey', 'create', '--name', 'dash', '--scopes', 'query', '--file', file]);
    const { code, out } = await mesh(['apikey', 'revoke', 'shop', '--file', file]);
    expect(code).toBe(0);
    expect(out.text).toMatch(/^revoked API key 'shop' in /);
    expect(parseKeyFile(readFileSync(file, 'utf8')).keys.map((k) => k.name)).toEqual(['dash']);
  });

  it.each([
    [['apikey', 'create', '--name', 'x', '--scopes', 'ingest,write'], 2, "mesh: invalid scope 'write' in --scopes: unknown scope; use ingest, query or admin"],
    [['apikey', 'create', '--scopes', 'ingest'], 2, "mesh: missing --name <name>: every key has a name (used by 'mesh apikey ls' and 'revoke')"],
    [['apikey', 'create', '--name', 'x'], 2, 'mesh: missing --scopes <list>: give one or more of ingest, query or admin, comma-separated'],
    [
      ['apikey', 'create', '--name', 'a b', '--scopes', 'query'],
      2,
      "mesh: invalid key name 'a b' (--name): it must be 1 to 64 letters, digits, '_', '.' or '-'",
    ],
    [
      ['apikey', 'create', '--name', 'x', '--scopes', 'query', '--types', 'order.>.x'],
      2,
      "mesh: invalid type 'order.>.x' in --types: '>' may only be the last token",
    ],
    [['apikey', 'ls', '--sources', 'a'], 2, "mesh: option --sources does not apply to 'mesh apikey ls'; use --file, --json or --help"],
    [['apikey', 'revoke'], 2, "mesh: 'mesh apikey revoke' takes one <name>, got none"],
  ])('refuses %j with exit code %d and one line', async (args, exitCode, line) => {
    const { code, out } = await mesh([...args, '--file', file]);
    expect({ code, stderr: out.stderr, stdout: out.stdout }).toEqual({ code: exitCode, stderr: [line], stdout: [] });
  });

  it('refuses a duplicate name and an unknown name to revoke with exit code 1', async () => {
    await mesh(['apikey', 'create', '--name', 'shop', '--scopes', 'ingest', '--file', file]);
    const dup = await mesh(['apikey', 'create', '--name', 'shop', '--scopes', 'query', '--file', file]);
    expect(dup.code).toBe(1);
    expect(dup.out.stderr).toEqual([`mesh: an API key named 'shop' already exists in ${file}; choose another name or revoke it first`]);
    const unknown = await mesh(['apikey', 'revoke', 'nope', '--file', file]);
    expect(unknown.code).toBe(1);
    expect(unknown.out.stderr).toEqual([`mesh: no API key named 'nope' in ${file}; known: shop`]);
  });

  it('needs a file: --file or MESH_API_KEYS_FILE', async () => {
    const { code, out } = await mesh(['apikey', 'ls']);
    expect(code).toBe(2);
    expect(out.stderr).toEqual(['mesh: missing --file <path>: name the API key file (or set MESH_API_KEYS_FILE)']);
  });
});
