/**
 * The API key file: JSON, one entry per key with its name, scopes, optional
 * event restrictions and the hash of the key (never the key). Written by
 * `mesh apikey` (atomically, mode 0600), read and watched by every service.
 *
 *   { "version": 1, "keys": [ { "id": "…", "name": "shop", "scopes": ["ingest"],
 *     "sources": ["shop"], "types": ["order.*"], "hash": "sha256:…", "created": "…" } ] }
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { typePatternProblem } from '@mesh/contracts';
import { isKeyHash, isKeyId } from './key-format';
import { isScope, Scopes, type Scope } from './scopes';

export const KeyFileVersion = 1;

export interface ApiKeyEntry {
  /** Public part of the key (`mesh_<id>_…`): finds the entry without a scan. */
  id: string;
  name: string;
  scopes: Scope[];
  /** Event sources this key may send; absent: any. */
  sources?: string[];
  /** Event types (or type patterns such as `order.*`) this key may send; absent: any. */
  types?: string[];
  /** `sha256:<hex>` of the whole key. */
  hash: string;
  /** When the key was created (RFC 3339). */
  created: string;
}

export interface KeyFile {
  version: typeof KeyFileVersion;
  keys: ApiKeyEntry[];
}

/** The file cannot be used as it is; the message names the entry and what is wrong. */
export class KeyFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KeyFileError';
  }
}

const NAME = /^[A-Za-z0-9_.-]{1,64}$/;

export function keyNameProblem(name: string): string | undefined {
  return NAME.test(name) ? undefined : "must be 1 to 64 letters, digits, '_', '.' or '-'";
}

function stringList(value: unknown, what: string, check: (s: string) => string | undefined): string[] {
  if (!Array.isArray(value) || value.length === 0) throw new KeyFileError(`${what} must be a non-empty list of strings, or left out`);
  for (const s of value) {
    if (typeof s !== 'string') throw new KeyFileError(`${what} must hold strings; got ${JSON.stringify(s)}`);
    const problem = check(s);
    if (problem) throw new KeyFileError(`${what}: ${JSON.stringify(s)} ${problem}`);
  }
  return value as string[];
}

export function sourceProblem(source: string): string | undefined {
  return source.length > 0 && source.length <= 1024 ? undefined : 'must be a non-empty source of at most 1024 characters';
}

function parseEntry(raw: unknown, i: number): ApiKeyEntry {
  const at = `keys[${i}]`;
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new KeyFileError(`${at} must be an object`);
  const e = raw as Record<string, unknown>;
  const known = new Set(['id', 'name', 'scopes', 'sources', 'types', 'hash', 'created']);
  const unknown = Object.keys(e).filter((k) => !known.has(k));
  if (unknown.length > 0) throw new KeyFileError(`${at} has unknown field(s) ${unknown.join(', ')}; known: ${[...known].join(', ')}`);
  if (typeof e.name !== 'string' || keyNameProblem(e.name))
    throw new KeyFileError(`${at}.name ${JSON.stringify(e.name)} ${keyNameProblem(String(e.name)) ?? 'must be a string'}`);
  const named = `${at} (${e.name})`;
  if (typeof e.id !== 'string' || !isKeyId(e.id)) throw new KeyFileError(`${named}.id must be 16 hex digits`);
  if (typeof e.hash !== 'string' || !isKeyHash(e.hash)) throw new KeyFileError(`${named}.hash must be "sha256:" and 64 hex digits`);
  const scopes = stringList(e.scopes, `${named}.scopes`, (s) => (isScope(s) ? undefined : `is not a scope; use ${Scopes.join(', ')}`));
  const sources = e.sources === undefined ? undefined : stringList(e.sources, `${named}.sources`, sourceProblem);
  const types = e.types === undefined ? undefined : stringList(e.types, `${named}.types`, (t) => typePatternProblem(t));
  if (typeof e.created !== 'string' || Number.isNaN(Date.parse(e.created))) throw new KeyFileError(`${named}.created must be an RFC 3339 time`);
  return { id: e.id, name: e.name, scopes: scopes as Scope[], ...(sources ? { sources } : {}), ...(types ? { types } : {}), hash: e.hash, created: e.created };
}

/** Parse and check a key file's text; throws a KeyFileError naming the first problem. */
export function parseKeyFile(text: string): KeyFile {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new KeyFileError(`not valid JSON: ${(err as Error).message}`);
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new KeyFileError('must be a JSON object with "version" and "keys"');
  const { version, keys } = raw as Record<string, unknown>;
  if (version !== KeyFileVersion) throw new KeyFileError(`"version" must be ${KeyFileVersion}, got ${JSON.stringify(version)}`);
  if (!Array.isArray(keys)) throw new KeyFileError('"keys" must be a list');
  const entries = keys.map(parseEntry);
  const names = new Set<string>();
  const ids = new Set<string>();
  for (const e of entries) {
    if (names.has(e.name)) throw new KeyFileError(`two keys are named '${e.name}'; names must be unique`);
    if (ids.has(e.id)) throw new KeyFileError(`two keys have the id ${e.id}; ids must be unique`);
    names.add(e.name);
    ids.add(e.id);
  }
  return { version: KeyFileVersion, keys: entries };
}

export function serializeKeyFile(file: KeyFile): string {
  return `${JSON.stringify(file, null, 2)}\n`;
}

/** Read and parse `path`; a file that does not exist is an empty key file when `missingIsEmpty`. */
export async function readKeyFile(path: string, opts: { missingIsEmpty?: boolean } = {}): Promise<KeyFile> {
  let text: string;
  try {
    text = await fs.readFile(path, 'utf8');
  } catch (err) {
    if (opts.missingIsEmpty && (err as NodeJS.ErrnoException).code === 'ENOENT') return { version: KeyFileVersion, keys: [] };
    throw new KeyFileError(`cannot read ${path}: ${(err as Error).message}`);
  }
  try {
    return parseKeyFile(text);
  } catch (err) {
    throw new KeyFileError(`${path}: ${(err as Error).message}`);
  }
}

/**
 * Replace `path` with `file` atomically (a temporary file in the same
 * folder, renamed over it), readable by its owner only: a service watching
 * the file never sees half of it.
 */
export async function writeKeyFile(path: string, file: KeyFile): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    await fs.writeFile(tmp, serializeKeyFile(file), { mode: 0o600, flag: 'wx' });
    await fs.chmod(tmp, 0o600);
    await fs.rename(tmp, path);
  } catch (err) {
    await fs.rm(tmp, { force: true }).catch(() => undefined);
    throw new KeyFileError(`cannot write ${path}: ${(err as Error).message}`);
  }
}
