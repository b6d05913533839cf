/**
 * The keys a service accepts, from the key file, kept current without a
 * restart: a folder watch (fs.watch, quick) and a stat poll (sure, for file
 * systems where watching misses changes) both lead to a reload. A reload
 * that finds the file unreadable or invalid keeps the last good keys and
 * warns once naming the problem, so a half-edited file never locks everyone
 * out nor lets anyone in.
 */
import { readFileSync, statSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import { hashKey, keyIdOf, keyMatches } from './key-format';
import { KeyFileError, parseKeyFile, type ApiKeyEntry } from './key-file';

export interface KeyStoreLog {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
}

/** Compared against when a key's id is unknown, so a miss costs what a hit does. */
const DecoyHash = hashKey('mesh_0000000000000000_decoy');

export class ApiKeyStore {
  private byId = new Map<string, ApiKeyEntry>();
  private text = '';
  private stamp = '';
  private badText?: string;
  private watcher?: FSWatcher;
  private poll?: NodeJS.Timeout;
  private debounce?: NodeJS.Timeout;
  private log?: KeyStoreLog;

  private constructor(readonly path: string) {}

  /** Load `path` now; throws a KeyFileError naming the problem (a service then refuses to start). */
  static load(path: string): ApiKeyStore {
    const store = new ApiKeyStore(path);
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new KeyFileError(`cannot read ${path}: ${(err as Error).message}; create it with 'mesh apikey create --file ${path} ...'`);
    }
    try {
      store.apply(text);
    } catch (err) {
      throw new KeyFileError(`${path}: ${(err as Error).message}`);
    }
    store.stamp = store.statStamp();
    return store;
  }

  get size(): number {
    return this.byId.size;
  }

  /** The entry of a presented key, or undefined when no entry's hash matches it. */
  verify(presented: string): ApiKeyEntry | undefined {
    const id = keyIdOf(presented);
    const entry = id === undefined ? undefined : this.byId.get(id);
    const matches = keyMatches(presented, entry?.hash ?? DecoyHash);
    return entry && matches ? entry : undefined;
  }

  /** Follow the file from now on: a changed file is reloaded within about `pollMs`. */
  watch(log: KeyStoreLog, pollMs = 1000): void {
    this.log = log;
    try {
      // The folder, not the file: `mesh apikey` replaces the file by a rename, which a file watch would lose.
      this.watcher = watch(dirname(this.path), { persistent: false }, (_event, name) => {
        if (name === null || name === basename(this.path)) this.soon();
      });
      this.watcher.on('error', () => this.watcher?.close());
    } catch {
      // No watch on this file system: the poll alone keeps the keys current.
    }
    this.poll = setInterval(() => {
      if (this.statStamp() !== this.stamp) this.soon();
    }, pollMs);
    this.poll.unref();
  }

  close(): void {
    this.watcher?.close();
    clearInterval(this.poll);
    clearTimeout(this.debounce);
  }

  /** Re-read the file now. */
  reload(): void {
    this.stamp = this.statStamp();
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (err) {
      return this.keepLastGood(`cannot read it: ${(err as Error).message}`, `unreadable:${(err as NodeJS.ErrnoException).code}`);
    }
    if (text === this.text) return;
    try {
      this.apply(text);
    } catch (err) {
      return this.keepLastGood((err as Error).message, text);
    }
    this.badText = undefined;
    this.log?.info('API keys reloaded', { file: this.path, keys: this.byId.size });
  }

  private apply(text: string): void {
    const file = parseKeyFile(text);
    this.byId = new Map(file.keys.map((k) => [k.id, k]));
    this.text = text;
  }

  private keepLastGood(problem: string, what: string): void {
    if (this.badText === what) return;
    this.badText = what;
    this.log?.warn('API key file is not usable; keeping the last good keys', { file: this.path, problem, keys: this.byId.size });
  }

  /** Several events arrive for one write (and the poll may see it too): reload once they settle. */
  private soon(): void {
    clearTimeout(this.debounce);
    this.debounce = setTimeout(() => this.reload(), 50);
    this.debounce.unref();
  }

  private statStamp(): string {
    try {
      const s = statSync(this.path);
      return `${s.ino}:${s.size}:${s.mtimeMs}`;
    } catch {
      return 'missing';
    }
  }
}
