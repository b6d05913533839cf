/**
 * Handler state of one partition: a JSON value per handler and partition
 * key (`ctx.state`), checkpointed with the partition's commit, so that after
 * a crash and a replay every key's state is as if each event ran once.
 *
 * - Scope: a handler sees the state of the event's partition key only, and
 *   its own (two handlers never share a value). One key's events run one at
 *   a time in stream order, so there is no race on a value.
 * - An attempt's writes count only if the attempt succeeds: a failed attempt
 *   (retried or dead-lettered) leaves the state as it was.
 * - Commit: the worker publishes a batch's outputs, then writes the state of
 *   every key the batch changed, then the runner acks the batch. With each
 *   key's value is stored the position (input stream sequence, index in its
 *   envelope) of the last event applied to it.
 * - Replay: an event at or before its key's stored position was applied,
 *   and its batch's outputs were stored before that state was written; it is
 *   skipped (the handler does not run again, nothing is published for it).
 *   Keys are written one by one, so a crash during a commit may leave some
 *   keys of a batch written and others not: the events of the others run
 *   again from their old state, which gives what they gave the first time.
 * - Persistence: one entry per handler and key in `mesh_checkpoints`,
 *   `<prefix><handler>.<key>` (prefix `processor.p03.state.`), written only
 *   for keys changed in the batch, each by compare-and-set on the revision
 *   this owner loaded or last wrote, so a stale former owner fails instead of
 *   overwriting. All entries of the partition are loaded when it is opened.
 * - Size: a value is at most MaxStateBytes of JSON; a larger one fails the
 *   handler with a StateTooLargeError (permanent: dead-lettered at once).
 */
import type { JetStreamManager } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import { Buckets, decodeKvToken, encodeKvToken } from '@mesh/contracts';
import { PermanentError } from '../errors';
import type { KeyState } from '../handler';

/** The largest state value of one handler and key, in characters of JSON. */
export const MaxStateBytes = 64 * 1024;

/** A handler tried to keep a value larger than MaxStateBytes. */
export class StateTooLargeError extends PermanentError {
  constructor(handler: string, key: string, bytes: number) {
    super(
      `state of handler '${handler}' for key ${JSON.stringify(key.slice(0, 64))} would be ${bytes} characters of JSON; ` +
        `at most ${MaxStateBytes} are accepted: keep a smaller summary (counters, a bounded list) instead`,
    );
    this.name = 'StateTooLargeError';
  }
}

/** A handler tried to keep a value JSON cannot hold (a function, undefined, a bigint, a cycle). */
export class StateNotJsonError extends PermanentError {
  constructor(handler: string, value: unknown, cause: unknown) {
    super(
      `state of handler '${handler}' must be a JSON value (object, array, string, number, boolean or null), got ${typeof value}` +
        (cause instanceof Error ? `: ${cause.message}` : ''),
    );
    this.name = 'StateNotJsonError';
  }
}

/** Where an event is: its envelope's stream sequence and its index in it. */
export interface StatePosition {
  seq: number;
  index: number;
}

/** What one attempt wrote: nothing, a new value (JSON), or a delete. */
export interface StateWrite {
  /** The JSON of the new value; undefined: deleted. */
  json: string | undefined;
}

interface Entry {
  json: string | undefined;
  position: StatePosition;
  /** Revision of the KV entry (0: never written). */
  revision: number;
  dirty: boolean;
}

/** The stream under the `mesh_checkpoints` bucket, and the subject of a key in it. */
const CheckpointStream = `KV_${Buckets.checkpoints}`;
const kvSubject = (key: string) => `$KV.${Buckets.checkpoints}.${key}`;

/**
 * The narrow part of a KV bucket and of JetStream management the store uses
 * (a test harness gives in-memory ones).
 */
export type StateBucket = Pick<KV, 'get' | 'create' | 'update'>;
export type StateListing = { streams: Pick<JetStreamManager['streams'], 'info'> };

export class HandlerStateStore {
  private readonly byHandler = new Map<string, Map<string, Entry>>();
  private dirty = 0;

  private constructor(
    private readonly kv: StateBucket,
    private readonly prefix: string,
  ) {}

  /** An empty store writing under `prefix`; use load() for a partition's checkpointed state. */
  static empty(kv: StateBucket, prefix: string): HandlerStateStore {
    return new HandlerStateStore(kv, prefix);
  }

  /**
   * Load every entry under `prefix`. They are listed by one stream info
   * request (as the retry ledger does): it fails within the request timeout
   * when the bucket has no leader, so the runner can retry.
   */
  static async load(kv: StateBucket, jsm: StateListing, prefix: string): Promise<HandlerStateStore> {
    const store = new HandlerStateStore(kv, prefix);
    const info = await jsm.streams.info(CheckpointStream, { subjects_filter: kvSubject(`${prefix}>`) });
    const subjectPrefix = kvSubject(prefix);
    await Promise.all(
      Object.keys(info.state.subjects ?? {}).map(async (subject) => {
        const name = subject.slice(subjectPrefix.length);
        const dot = name.indexOf('.');
        if (dot <= 0) return;
        const entry = await kv.get(`${prefix}${name}`);
        if (!entry || entry.operation !== 'PUT') return;
        const saved = entry.json<{ s: number; i: number; v?: unknown }>();
        store.entries(name.slice(0, dot)).set(decodeKvToken(name.slice(dot + 1)), {
          json: 'v' in saved ? JSON.stringify(saved.v) : undefined,
          position: { seq: saved.s, index: saved.i },
          revision: entry.revision,
          dirty: false,
        });
      }),
    );
    return store;
  }

  private entries(handler: string): Map<string, Entry> {
    let m = this.byHandler.get(handler);
    if (!m) this.byHandler.set(handler, (m = new Map()));
    return m;
  }

  /** Whether the event at `at` was applied to the state of (handler, key) already: skip it. */
  applied(handler: string, key: string, at: StatePosition): boolean {
    const p = this.byHandler.get(handler)?.get(key)?.position;
    return p !== undefined && (p.seq > at.seq || (p.seq === at.seq && p.index >= at.index));
  }

  /** The value of (handler, key), as a fresh copy; undefined when there is none. */
  get<T = unknown>(handler: string, key: string): T | undefined {
    const json = this.byHandler.get(handler)?.get(key)?.json;
    return json === undefined ? undefined : (JSON.parse(json) as T);
  }

  /**
   * The `ctx.state` of one attempt: reads see the store and the attempt's own
   * writes; the writes are returned by `write()` and applied by apply() only
   * if the attempt succeeds.
   */
  attempt(handler: string, key: string): { state: KeyState; write(): StateWrite | undefined } {
    return keyStateOver(handler, key, () => this.byHandler.get(handler)?.get(key)?.json);
  }

  /** Apply a successful attempt's write for the event at `at`. */
  apply(handler: string, key: string, write: StateWrite, at: StatePosition): void {
    const m = this.entries(handler);
    const old = m.get(key);
    if (!old?.dirty) this.dirty++;
    m.set(key, { json: write.json, position: at, revision: old?.revision ?? 0, dirty: true });
  }

  /** Whether anything waits to be committed. */
  get changed(): boolean {
    return this.dirty > 0;
  }

  /**
   * Write every changed key (compare-and-set). Rejects if another owner wrote
   * since; what was written stays written (see the replay note above).
   */
  async commit(): Promise<void> {
    if (this.dirty === 0) return;
    const writes: Promise<void>[] = [];
    for (const [handler, m] of this.byHandler) {
      for (const [key, e] of m) {
        if (!e.dirty) continue;
        const body = `{"s":${e.position.seq},"i":${e.position.index}${e.json === undefined ? '' : `,"v":${e.json}`}}`;
        const kvKey = `${this.prefix}${handler}.${encodeKvToken(key)}`;
        writes.push(
          (e.revision === 0 ? this.kv.create(kvKey, body) : this.kv.update(kvKey, body, e.revision)).then((revision) => {
            e.revision = revision;
            e.dirty = false;
            this.dirty--;
          }),
        );
      }
    }
    await Promise.all(writes);
  }

  /** Keys with an entry (a value or a delete), per handler. */
  size(): number {
    let n = 0;
    for (const m of this.byHandler.values()) n += m.size;
    return n;
  }
}

/**
 * A KeyState over a current value (`read`, JSON), buffering its writes. Used
 * by the store for each attempt, and on its own where there is no store (a
 * handler run by hand in a unit test starts from no state).
 */
export function keyStateOver(handler: string, key: string, read: () => string | undefined): { state: KeyState; write(): StateWrite | undefined } {
  let write: StateWrite | undefined;
  const current = () => (write ? write.json : read());
  const state: KeyState = {
    key,
    get<T = unknown>(): T | undefined {
      const json = current();
      return json === undefined ? undefined : (JSON.parse(json) as T);
    },
    set(value: unknown): void {
      let json: string | undefined;
      try {
        json = JSON.stringify(value);
      } catch (err) {
        throw new StateNotJsonError(handler, value, err);
      }
      if (json === undefined) throw new StateNotJsonError(handler, value, undefined);
      if (json.length > MaxStateBytes) throw new StateTooLargeError(handler, key, json.length);
      write = { json };
    },
    delete(): void {
      write = { json: undefined };
    },
  };
  return { state, write: () => write };
}
