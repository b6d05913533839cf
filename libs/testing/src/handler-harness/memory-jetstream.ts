/**
 * In-memory stand-ins for the narrow parts of JetStream the handler runtime
 * touches, so the harness runs the real worker without a server:
 *
 * - MemoryStreams: `publish` with the duplicate window (a message id seen
 *   before is acknowledged as a duplicate and not stored), keeping every
 *   stored message with its subject and headers;
 * - MemoryCheckpoints: the `mesh_checkpoints` bucket as the retry ledger and
 *   the handler state use it (get, create, update with compare-and-set) and
 *   the stream calls they make on it (list subjects, purge a subject).
 *
 * Only what the runtime calls is implemented; anything else throws, naming it.
 */
import type { KvEntry } from '@nats-io/kv';
import { Buckets } from '@mesh/contracts';

export interface StoredMessage {
  subject: string;
  msgId?: string;
  data: Uint8Array;
  headers: Record<string, string>;
}

interface HeadersLike {
  keys(): string[];
  get(k: string): string;
}

export class MemoryStreams {
  readonly stored: StoredMessage[] = [];
  private readonly ids = new Set<string>();

  constructor(private readonly onStored: (m: StoredMessage) => void = () => {}) {}

  async publish(subject: string, data?: Uint8Array | string, opts?: { msgID?: string; headers?: HeadersLike }) {
    const msgId = opts?.msgID;
    if (msgId !== undefined && this.ids.has(msgId)) return { stream: 'memory', seq: 0, duplicate: true, domain: '' };
    if (msgId !== undefined) this.ids.add(msgId);
    const headers: Record<string, string> = {};
    for (const k of opts?.headers?.keys() ?? []) headers[k] = opts!.headers!.get(k);
    const m: StoredMessage = { subject, msgId, data: typeof data === 'string' ? new TextEncoder().encode(data) : (data ?? new Uint8Array()), headers };
    this.stored.push(m);
    this.onStored(m);
    return { stream: 'memory', seq: this.stored.length, duplicate: false, domain: '' };
  }
}

interface Entry {
  value: Uint8Array;
  revision: number;
}

const CheckpointStream = `KV_${Buckets.checkpoints}`;
const SubjectPrefix = `$KV.${Buckets.checkpoints}.`;

/** A compare-and-set that lost, as the server reports it. */
export class WrongRevisionError extends Error {
  constructor(key: string, expected: number, actual: number) {
    super(`wrong last sequence: ${actual} (key ${key}, expected revision ${expected})`);
    this.name = 'WrongRevisionError';
  }
}

export class MemoryCheckpoints {
  private readonly entries = new Map<string, Entry>();
  private revision = 0;
  private failing?: { match: (key: string) => boolean; error: Error };

  /**
   * Fail the next write of a key `match` accepts (a server gone at the wrong
   * moment), once: the worker rejects its batch, as it would on a real failure.
   */
  failNextWrite(match: (key: string) => boolean, error = new Error('injected failure: the checkpoint write did not reach the server')): void {
    this.failing = { match, error };
  }

  /** Key-value calls (`KV`). */
  async get(key: string): Promise<KvEntry | null> {
    const e = this.entries.get(key);
    if (!e) return null;
    const value = e.value;
    return {
      bucket: Buckets.checkpoints,
      key,
      rawKey: key,
      created: new Date(0),
      value,
      revision: e.revision,
      operation: 'PUT',
      length: value.length,
      string: () => new TextDecoder().decode(value),
      json: <T>() => JSON.parse(new TextDecoder().decode(value)) as T,
    };
  }

  async create(key: string, value: string | Uint8Array): Promise<number> {
    const e = this.entries.get(key);
    if (e) throw new WrongRevisionError(key, 0, e.revision);
    return this.write(key, value);
  }

  async update(key: string, value: string | Uint8Array, revision: number): Promise<number> {
    const e = this.entries.get(key);
    if (!e || e.revision !== revision) throw new WrongRevisionError(key, revision, e?.revision ?? 0);
    return this.write(key, value);
  }

  private write(key: string, value: string | Uint8Array): number {
    if (this.failing?.match(key)) {
      const { error } = this.failing;
      this.failing = undefined;
      throw error;
    }
    this.entries.set(key, { value: typeof value === 'string' ? new TextEncoder().encode(value) : value, revision: ++this.revision });
    return this.revision;
  }

  /** Keys under a prefix, for a test to look at. */
  keys(prefix = ''): string[] {
    return [...this.entries.keys()].filter((k) => k.startsWith(prefix)).sort();
  }

  /** Stream calls (`JetStreamManager.streams`) on the bucket's stream. */
  readonly streams = {
    info: async (stream: string, opts?: { subjects_filter?: string }) => {
      this.checkStream(stream);
      const filter = opts?.subjects_filter ?? `${SubjectPrefix}>`;
      const subjects: Record<string, number> = {};
      for (const key of this.entries.keys()) {
        const subject = `${SubjectPrefix}${key}`;
        if (subjectMatches(filter, subject)) subjects[subject] = 1;
      }
      return { state: { subjects } };
    },
    purge: async (stream: string, opts?: { filter?: string }) => {
      this.checkStream(stream);
      let purged = 0;
      for (const key of [...this.entries.keys()]) {
        if (opts?.filter === undefined || subjectMatches(opts.filter, `${SubjectPrefix}${key}`)) {
          this.entries.delete(key);
          purged++;
        }
      }
      return { success: true, purged };
    },
  };

  private checkStream(stream: string): void {
    if (stream !== CheckpointStream) throw new Error(`the in-memory checkpoints hold only the stream ${CheckpointStream}, not ${stream}`);
  }
}

/** NATS subject matching with `*` and a trailing `>`. */
function subjectMatches(filter: string, subject: string): boolean {
  const f = filter.split('.');
  const s = subject.split('.');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '>') return s.length > i;
    if (i >= s.length || (f[i] !== '*' && f[i] !== s[i])) return false;
  }
  return f.length === s.length;
}
