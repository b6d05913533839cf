/**
 * The retry ledger of one partition: the events that wait for another
 * attempt, by input envelope, and the keys they hold back.
 *
 * An event whose handler threw a retryable error waits: its envelope is
 * given back to JetStream with a delay (a nak) while the envelope's other
 * events go on. Its key's later events wait behind it, so one key's events
 * still run in order; other keys do not wait.
 *
 * Such an envelope is *split*: the outputs of its events are published at
 * different times, so each event's outputs get ids of their own
 * (`processor:<seq>:e<index>:...`) instead of the envelope's
 * (`processor:<seq>:<p>:...`). A replay must split it the same way, or the
 * envelope's ids would be taken by outputs that lack the waiting events.
 * Hence the record, written to `mesh_checkpoints` before anything of the
 * split envelope is published and deleted only once its ack is confirmed:
 * whoever handles the envelope next, this instance or a new owner after a
 * crash, sees that it is split.
 *
 * Only the partition's lease holder writes here; a record changes by
 * compare-and-set, so a stale former owner fails instead of overwriting.
 */
import type { JetStreamManager } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import { Buckets, retryRecordPrefix } from '@mesh/contracts';

/** The stream under the `mesh_checkpoints` bucket, and the subject of a key in it. */
const CheckpointStream = `KV_${Buckets.checkpoints}`;
const kvSubject = (key: string) => `$KV.${Buckets.checkpoints}.${key}`;

/** An event of a split envelope that has not been handled to the end yet. */
export interface WaitingEvent {
  /** Position in its envelope. */
  index: number;
  /** Its partition key: later events of the key wait behind it. */
  key: string;
  /** Attempts made so far (0 when it only waits behind its key). */
  attempts: number;
  /** Not to be tried before this time (epoch ms). */
  notBefore: number;
}

interface Entry {
  revision: number;
  waiting: Map<number, WaitingEvent>;
  /** This instance published the outputs of every event not waiting. After a reload, unknown: all run again (same ids). */
  current: boolean;
}

interface Position {
  seq: number;
  event: WaitingEvent;
}

const before = (a: { seq: number; index: number }, b: { seq: number; index: number }) => a.seq < b.seq || (a.seq === b.seq && a.index < b.index);

function earliest(list: Position[]): Position | undefined {
  let head: Position | undefined;
  for (const p of list) if (!head || before({ seq: p.seq, index: p.event.index }, { seq: head.seq, index: head.event.index })) head = p;
  return head;
}

export class RetryLedger {
  private readonly entries = new Map<number, Entry>();
  private readonly byKey = new Map<string, Position[]>();

  private constructor(
    private readonly kv: KV,
    private readonly jsm: JetStreamManager,
    private readonly prefix: string,
  ) {}

  /**
   * The records of `partition`, minus those of envelopes acknowledged already
   * (up to `ackFloor`). They are listed by one stream info request, which
   * fails within the request timeout when the bucket has no leader (a KV
   * key listing would wait through an election), so the runner can retry.
   */
  static async load(kv: KV, jsm: JetStreamManager, partition: number, ackFloor: number, service = 'processor'): Promise<RetryLedger> {
    const ledger = new RetryLedger(kv, jsm, retryRecordPrefix(partition, service));
    const info = await jsm.streams.info(CheckpointStream, { subjects_filter: kvSubject(`${ledger.prefix}>`) });
    const subjectPrefix = kvSubject(ledger.prefix);
    for (const subject of Object.keys(info.state.subjects ?? {})) {
      const seq = Number(subject.slice(subjectPrefix.length));
      const entry = await kv.get(`${ledger.prefix}${seq}`);
      if (!entry || entry.operation !== 'PUT') continue;
      if (seq <= ackFloor) {
        // Acked, but the process stopped before removing the record.
        await ledger.remove(seq);
        continue;
      }
      const waiting = (entry.json() as { waiting: WaitingEvent[] }).waiting;
      ledger.set(seq, { revision: entry.revision, waiting: new Map(waiting.map((w) => [w.index, w])), current: false });
    }
    return ledger;
  }

  /** Whether the envelope `seq` is split. */
  has(seq: number): boolean {
    return this.entries.has(seq);
  }

  /** Events of a split envelope still to run: the waiting ones, or all (`undefined`) when this instance cannot vouch for the others. */
  toRun(seq: number): number[] | undefined {
    const entry = this.entries.get(seq);
    return entry?.current ? [...entry.waiting.keys()].sort((a, b) => a - b) : undefined;
  }

  /** The event at (seq, index), if it is waiting. */
  waiting(seq: number, index: number): WaitingEvent | undefined {
    return this.entries.get(seq)?.waiting.get(index);
  }

  /** Whether an event of `key` before envelope `seq` is waiting. */
  waitsBefore(key: string, seq: number): boolean {
    const list = this.byKey.get(key);
    return list !== undefined && list.some((p) => p.seq < seq);
  }

  /**
   * The earliest waiting event of `key` that comes before (seq, index), not
   * counting envelopes in `except` (those being handled now, whose order the
   * caller keeps itself).
   */
  heldBackBy(key: string, seq: number, index: number, except: ReadonlySet<number>): WaitingEvent | undefined {
    const list = this.byKey.get(key);
    // The common case, checked per event: nothing of the key waits.
    if (list === undefined) return undefined;
    return earliest(list.filter((p) => !except.has(p.seq) && before({ seq: p.seq, index: p.event.index }, { seq, index })))?.event;
  }

  /** The earliest waiting event of `key`, with its envelope. */
  headOf(key: string): Position | undefined {
    const list = this.byKey.get(key);
    return list === undefined ? undefined : earliest(list);
  }

  /**
   * Record what of envelope `seq` still waits (possibly nothing), before any
   * of its outputs is published. Creates the record or replaces it by
   * compare-and-set.
   */
  async record(seq: number, waiting: WaitingEvent[]): Promise<void> {
    const key = `${this.prefix}${seq}`;
    const body = JSON.stringify({ waiting });
    const entry = this.entries.get(seq);
    const revision = entry ? await this.kv.update(key, body, entry.revision) : await this.kv.create(key, body);
    this.set(seq, { revision, waiting: new Map(waiting.map((w) => [w.index, w])), current: true });
  }

  /** The acks of these envelopes are confirmed: their records go. */
  async settle(seqs: number[]): Promise<void> {
    for (const seq of seqs) {
      if (!this.entries.has(seq)) continue;
      await this.remove(seq);
      this.set(seq, undefined);
    }
  }

  /** Purged, not deleted: a KV delete would leave a marker per envelope behind for ever. */
  private async remove(seq: number): Promise<void> {
    await this.jsm.streams.purge(CheckpointStream, { filter: kvSubject(`${this.prefix}${seq}`) });
  }

  /** Envelopes with a record. */
  size(): number {
    return this.entries.size;
  }

  private set(seq: number, entry: Entry | undefined): void {
    const old = this.entries.get(seq);
    for (const w of old?.waiting.values() ?? []) {
      const list = (this.byKey.get(w.key) ?? []).filter((p) => p.seq !== seq);
      if (list.length > 0) this.byKey.set(w.key, list);
      else this.byKey.delete(w.key);
    }
    if (!entry) {
      this.entries.delete(seq);
      return;
    }
    this.entries.set(seq, entry);
    for (const w of entry.waiting.values()) {
      const list = this.byKey.get(w.key) ?? [];
      list.push({ seq, event: w });
      this.byKey.set(w.key, list);
    }
  }
}
