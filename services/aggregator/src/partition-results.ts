/**
 * The results of one partition its owner keeps: it writes them to KV
 * `mesh_aggregates` and answers queries for them from its live state.
 *
 * - Writes: once per commit, each key whose windows changed since the last
 *   commit is put once (its latest result), however many of the batch's
 *   events touched it.
 * - Answers are never older than KV: a key is answered from the windows
 *   only when they hold exactly what was last written for it (the key is
 *   not dirty and no put of it is in flight). A key whose put is in flight
 *   waits for the put. A key with changes not yet committed is answered
 *   with what the last commit wrote for it (a hot key changes in every
 *   batch: it is answered while the next batch runs), or `kv` if the last
 *   commit did not write it; so is a key the partition does not hold (never
 *   seen, or dropped by retention after its last result was written): KV
 *   holds its newest committed result.
 * - Answers are never newer than KV either, so a reader never sees a
 *   result go back: when the owner dies or lets the partition go, the
 *   readers fall back to KV, which holds everything the owner answered,
 *   and the next owner starts from a checkpoint at least as new.
 * - A failed write or batch closes it at once: the partition is reopened
 *   from its checkpoint, and until then every answer is `kv`.
 */
import type { KV } from '@nats-io/kv';
import { aggregateKvKey } from '@mesh/contracts';
import type { PartitionWindows } from '@mesh/runtime';

/** How many times an answer waits for a put of its key before it gives up and says `kv`. */
const MaxWaits = 3;

export class PartitionResults {
  /** Puts in flight, by KV key. */
  private readonly writing = new Map<string, Promise<unknown>>();
  /** What the last commit wrote, by KV key, once KV acked all of it: still KV's value of each. */
  private lastCommit = new Map<string, string>();
  /** The write under way, if any: until it ends, lastCommit may be older than KV. */
  private flushing?: Promise<unknown>;
  private closed = false;

  constructor(
    private readonly kv: KV,
    readonly windows: PartitionWindows,
  ) {}

  /**
   * Put the result of every key whose windows changed since the last call,
   * each once. `remember`: keep them to answer while the next batch changes
   * them (not for the rewrite of a whole partition when it opens).
   */
  async write(remember = true): Promise<void> {
    const written = new Map<string, string>();
    const all = Promise.all(
      this.windows.takeDirtyJson().map(({ name, key, json }) => {
        const kvKey = aggregateKvKey(name, key);
        if (remember) written.set(kvKey, json);
        const put: Promise<unknown> = this.kv.put(kvKey, json).then(
          () => {
            if (this.writing.get(kvKey) === put) this.writing.delete(kvKey);
          },
          (err: unknown) => {
            // The windows now say the key is written: nothing may be answered from them any more.
            this.close();
            throw err;
          },
        );
        this.writing.set(kvKey, put);
        return put;
      }),
    );
    this.flushing = all;
    try {
      await all;
      this.lastCommit = written;
    } finally {
      if (this.flushing === all) this.flushing = undefined;
    }
  }

  /** Stop answering from the windows (the partition failed, is lost or is being let go). */
  close(): void {
    this.closed = true;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** The key's result as last written to KV, from the windows; undefined: read KV. */
  async answer(name: string, key: string): Promise<string | undefined> {
    const kvKey = aggregateKvKey(name, key);
    for (let waits = 0; !this.closed; waits++) {
      // Its put in flight, or (changed again while a write is under way) maybe in the commit being written.
      const pending = this.writing.get(kvKey) ?? (this.windows.isDirty(name, key) ? this.flushing : undefined);
      if (pending === undefined) return this.windows.isDirty(name, key) ? this.lastCommit.get(kvKey) : this.windows.resultJson(name, key);
      if (waits === MaxWaits) return undefined;
      await pending.catch(() => undefined);
    }
    return undefined;
  }
}
