import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKey, keyIdOf, keyMatches } from './key-format';
import { parseKeyFile, readKeyFile, serializeKeyFile, writeKeyFile, type ApiKeyEntry } from './key-file';

function entry(over: Partial<ApiKeyEntry> = {}): ApiKeyEntry {
  const k = generateKey();
  return { id: k.id, name: 'shop', scopes: ['ingest'], hash: k.hash, created: '2026-01-01T00:00:00.000Z', ...over };
}

const file = (keys: unknown[]) => JSON.stringify({ version: 1, keys });

describe('API key format', () => {
  it('makes keys whose id finds their entry and whose hash matches only them', () => {
    const a = generateKey();
    const b = generateKey();
    expect(a.secret).toMatch(/^mesh_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    expect(keyIdOf(a.secret)).toBe(a.id);
    expect(keyMatches(a.secret, a.hash)).toBe(true);
    expect(keyMatches(b.secret, a.hash)).toBe(false);
    expect(keyMatches(`${a.secret}x`, a.hash)).toBe(false);
    expect(keyIdOf('Bearer nonsense')).toBeUndefined();
  });
});

describe('parseKeyFile', () => {
  it('reads a valid file, optional restrictions included', () => {
    const e = entry({ sources: ['shop'], types: ['order.*'] });
    expect(parseKeyFile(file([e]))).toEqual({ version: 1, keys: [e] });
    expect(parseKeyFile(file([]))).toEqual({ version: 1, keys: [] });
  });

  it.each([
    ['not JSON', '{', /not valid JSON/],
    ['a wrong version', JSON.stringify({ version: 2, keys: [] }), /"version" must be 1, got 2/],
    ['keys that are not a list', JSON.stringify({ version: 1, keys: {} }), /"keys" must be a list/],
    ['an unknown scope', file([entry({ scopes: ['write' as never] })]), /keys\[0\] \(shop\)\.scopes: "write" is not a scope; use ingest, query, admin/],
    ['no scopes', file([entry({ scopes: [] })]), /scopes must be a non-empty list/],
    ['a bad hash', file([entry({ hash: 'md5:abc' })]), /keys\[0\] \(shop\)\.hash must be "sha256:"/],
    ['a bad type pattern', file([entry({ types: ['order.>.x'] })]), /types: "order.>.x" '>' may only be the last token/],
    ['a bad name', file([entry({ name: 'a b' })]), /keys\[0\]\.name "a b" must be 1 to 64 letters/],
    ['two keys of one name', file([entry(), entry()]), /two keys are named 'shop'/],
    ['an unknown field', file([{ ...entry(), secret: 'x' }]), /unknown field\(s\) secret/],
    ['a bad creation time', file([entry({ created: 'yesterday' })]), /created must be an RFC 3339 time/],
  ])('refuses %s, naming the problem', (_what, text, problem) => {
    expect(() => parseKeyFile(text)).toThrow(problem);
  });

  it('writes atomically with mode 0600 and reads back what it wrote', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keys-'));
    const path = join(dir, 'keys.json');
    const keys = [entry(), entry({ name: 'dash', scopes: ['query'] })];
    await writeKeyFile(path, { version: 1, keys });
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readFileSync(path, 'utf8')).toBe(serializeKeyFile({ version: 1, keys }));
    expect((await readKeyFile(path)).keys).toEqual(keys);
    await expect(readKeyFile(join(dir, 'missing.json'))).rejects.toThrow(/cannot read .*missing.json/);
    expect(await readKeyFile(join(dir, 'missing.json'), { missingIsEmpty: true })).toEqual({ version: 1, keys: [] });
  });
});
