import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKey } from './key-format';
import { writeKeyFile, type ApiKeyEntry } from './key-file';
import { ApiKeyStore } from './key-store';

function entryFor(name: string) {
  const k = generateKey();
  const entry: ApiKeyEntry = { id: k.id, name, scopes: ['ingest'], hash: k.hash, created: new Date().toISOString() };
  return { entry, secret: k.secret };
}

async function until(check: () => boolean, ms = 5000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

describe('ApiKeyStore', () => {
  const logs: { level: string; msg: string; fields?: Record<string, unknown> }[] = [];
  const log = {
    info: (msg: string, fields?: Record<string, unknown>) => logs.push({ level: 'info', msg, fields }),
    warn: (msg: string, fields?: Record<string, unknown>) => logs.push({ level: 'warn', msg, fields }),
  };
  let store: ApiKeyStore | undefined;
  afterEach(() => store?.close());

  it('verifies keys of the file and nothing else', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'store-')), 'keys.json');
    const a = entryFor('a');
    await writeKeyFile(path, { version: 1, keys: [a.entry] });
    store = ApiKeyStore.load(path);
    expect(store.verify(a.secret)?.name).toBe('a');
    expect(store.verify(entryFor('b').secret)).toBeUndefined();
    expect(store.verify(a.secret.slice(0, -1) + (a.secret.endsWith('A') ? 'B' : 'A'))).toBeUndefined();
    expect(store.verify('not-a-key')).toBeUndefined();
  });

  it('refuses to load a missing or invalid file, naming it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'store-'));
    expect(() => ApiKeyStore.load(join(dir, 'nope.json'))).toThrow(/cannot read .*nope.json.*mesh apikey create/);
    writeFileSync(join(dir, 'bad.json'), '{"version":1}');
    expect(() => ApiKeyStore.load(join(dir, 'bad.json'))).toThrow(/bad.json: "keys" must be a list/);
  });

  it('follows the file: a revoked key is refused, an invalid file keeps the last good keys and warns once', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'store-')), 'keys.json');
    const a = entryFor('a');
    const b = entryFor('b');
    await writeKeyFile(path, { version: 1, keys: [a.entry, b.entry] });
    store = ApiKeyStore.load(path);
    store.watch(log, 100);

    await writeKeyFile(path, { version: 1, keys: [b.entry] });
    expect(await until(() => store!.verify(a.secret) === undefined)).toBe(true);
    expect(store.verify(b.secret)?.name).toBe('b');

    writeFileSync(path, '{"version": 1, "keys": [ {"name": "half');
    expect(await until(() => logs.some((l) => l.level === 'warn'))).toBe(true);
    await new Promise((r) => setTimeout(r, 300));
    const warnings = logs.filter((l) => l.level === 'warn');
    expect(warnings).toHaveLength(1);
    expect(warnings[0].fields?.problem).toMatch(/not valid JSON/);
    expect(store.verify(b.secret)?.name).toBe('b');
    // No secret or hash ever reaches a log line.
    expect(JSON.stringify(logs)).not.toMatch(/sha256:|mesh_[0-9a-f]{16}_/);

    const c = entryFor('c');
    await writeKeyFile(path, { version: 1, keys: [c.entry] });
    expect(await until(() => store!.verify(c.secret) !== undefined)).toBe(true);
    expect(store.verify(b.secret)).toBeUndefined();
  });
});
