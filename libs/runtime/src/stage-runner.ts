/**
 * The stage runner: consumes the partitions this instance owns, one durable
 * consumer each, and hands their messages to a PartitionWorker in batches.
 *
 * - Order: a partition's batches are handled one at a time, in stream order,
 *   and acked in that order once committed.
 * - Commit per interval (as Kafka Streams' commit.interval.ms): the worker
 *   resolves a batch once its outputs are stored; the batches handled since
 *   the last commit are committed together (the worker checkpoints its
 *   state, then their inputs are acked) at most every `commitIntervalMs`, and
 *   at once on a graceful stop or when the partition holds `maxAckPending`
 *   messages (the server would send no more). A crash in between loses only
 *   work whose inputs were not acked: they come again, the state restarts
 *   from the checkpoint, and the outputs, whose ids derive from the inputs,
 *   are dropped by the duplicate window. So an ack never says more than the
 *   checkpoint does.
 * - Failure: if the worker rejects (JetStream unavailable, say), the
 *   partition's unacked messages are nak'ed, the worker is dropped and the
 *   partition reopened after a backoff: state is reloaded from its checkpoint
 *   and the messages come again in order.
 * - Retry: the worker may give an envelope back (a nak with a delay) instead
 *   of having it acked; JetStream redelivers it after the delay while the
 *   partition goes on. Keeping per-key order meanwhile is the worker's part.
 * - Malformed envelopes never reach the worker: they are dead-lettered and acked.
 * - Lease loss: nothing more is handled, committed or acked for the
 *   partition, at once; what was uncommitted comes again to the next owner.
 * - Graceful stop: no new pulls; what was received is handled, committed and acked.
 */
import type { JetStreamClient, JetStreamManager, JsMsg } from '@nats-io/jetstream';
import type { MetricsRegistry } from '@mesh/telemetry';
import { EndpointStats } from './endpoint-stats';
import { consumerName, stageInput, type CloudEvent, type IndexEntry, type Stage } from '@mesh/contracts';
import { partitionMessages, preparePartitionConsumer } from '@mesh/messaging';
import { defer, EMPTY, endWith, finalize, from, merge, retry, Subject, switchMap, tap, timer, type Observable, type Subscription } from 'rxjs';
import { deadLetter } from './dead-letter';
import { decodeInput } from './decode-input';
import { faultPoint } from './fault-point';
import type { Logger } from './logger';
import { batchWhileBusy } from './operators/batch-while-busy';
import { takeTurn } from './take-turn';

/** One input message of a partition, decoded. */
export interface InputEnvelope {
  seq: number;
  subject: string;
  /** When the stream stored it (epoch ms). */
  timestampMs: number;
  /** 1 on first delivery. */
  deliveryCount: number;
  /** Put back from the dead-letter stream by an operator (`mesh dlq redrive`). */
  redriven: boolean;
  /**
   * The events. Decoded before the worker sees the envelope, unless the
   * worker `readsIndex` and the envelope has an index: then decoded (and
   * checked against the index) on first read, which throws
   * MalformedEnvelopeError if the body does not match.
   */
  readonly events: CloudEvent[];
  /** The envelope as received: a stage that forwards all of its events unchanged can send these bytes. */
  data: Uint8Array;
  /** The envelope's index (the `Mesh-Index` header), checked against the body's length; absent in envelopes without one. */
  index?: readonly IndexEntry[];
  /** The index as received (the header's value), to forward with `data`. */
  indexHeader?: string;
}

/** What the runner does with one input message once the worker is done with it. */
export type Disposition =
  | { kind: 'ack' }
  /** Ack, wait for the server to confirm it, then tell the worker (`settled`). */
  | { kind: 'ack-confirmed' }
  /** Give it back: JetStream redelivers it after `delayMs` (a nak with a delay). */
  | { kind: 'retry'; delayMs: number };

export interface PartitionWorker {
  /**
   * The worker routes by `index` and reads `events` only when it must: an
   * envelope with an index reaches it with its body unparsed, and the worker
   * dead-letters one whose `events` throw MalformedEnvelopeError itself.
   */
  readonly readsIndex?: boolean;
  /**
   * Handle envelopes of one partition, in order. Resolve once every output is
   * stored (under ids derived from the input, so a replay stores nothing
   * twice); the runner acks them at the next commit, or does then what the
   * returned map says for an envelope (by sequence). Reject to have the
   * partition reopened (state reloaded from the checkpoint) and every
   * uncommitted envelope delivered again.
   */
  handle(batch: InputEnvelope[]): Promise<void | ReadonlyMap<number, Disposition>>;
  /**
   * Checkpoint what the batches handled since the last commit did to the
   * partition's state; the runner acks (or gives back) their inputs only
   * after it resolves. Called between batches, never during one. Reject to
   * have the partition reopened, as for `handle`. Absent: no state to keep.
   */
  commit?(): Promise<void>;
  /** The server confirmed the acks of these sequences (those marked `ack-confirmed`). */
  settled?(seqs: number[]): Promise<void>;
}

/** Where a partition resumes. */
export interface Resume {
  /** Everything up to this stream sequence is acknowledged. */
  ackFloor: number;
  /**
   * Up to this sequence, a message delivered for the first time may have been
   * handled before (by a previous owner, or before the consumer was restarted
   * at its ack floor) without being acked.
   */
  deliveredUpTo: number;
}

export interface StageRunnerOptions {
  stage: Stage;
  js: JetStreamClient;
  jsm: JetStreamManager;
  /** Consumer settings the owner applies when it prepares a partition's consumer. */
  maxAckPending: number;
  /** The partitions this instance should own, as they change. */
  ownership: Observable<ReadonlySet<number>>;
  /** Partitions whose ownership was lost: stopped at once, not finished. */
  lost?: Observable<number>;
  /** Whether this instance may act for a partition right now (checked before handling and before acking). */
  holds?(partition: number): boolean;
  /**
   * Load a partition's state (checkpoint) and return its worker.
   * `ensureLease` throws LeaseLostError unless this instance may still act for
   * the partition: a worker calls it before a write that nothing else fences
   * (one that is not compare-and-set and has no message id).
   */
  open(partition: number, resume: Resume, ensureLease: () => void): Promise<PartitionWorker>;
  /** Most messages in one worker batch. */
  batchMessages: number;
  /** Most messages one pull asks for. */
  pullMessages: number;
  /** Longest a handled batch waits for its commit (checkpoint and acks); 0 (the default): commit every batch. */
  commitIntervalMs?: number;
  /** The consumer's ack wait; in-flight messages are kept alive well within it. */
  ackWaitMs: number;
  log: Logger;
  /** Called when a partition starts or stops being consumed. */
  onPartitionChange?(partition: number, consuming: boolean): void;
  /** Called once a partition that left `ownership` is finished and acked: release it. */
  released?(partition: number): void | Promise<void>;
  metrics?: MetricsRegistry;
  /** Counts for service discovery. */
  stats?: EndpointStats;
}

const MAX_REOPEN_DELAY_MS = 10_000;
/** The longest delay setTimeout honours. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Logged when a batch is left unhandled or unacked because the lease may have lapsed. */
export const LeaseNotHeldMessage = 'lease of the partition not held; batch left for its owner';

/** This instance can no longer vouch for its lease of a partition: it must not write or ack for it. */
export class LeaseLostError extends Error {
  constructor(readonly partition: number) {
    super(`the lease of partition ${partition} is no longer held`);
    this.name = 'LeaseLostError';
  }
}

/** Put in a partition's input to have what was handled committed now (the interval is over, or a graceful stop). */
const CommitNow = Symbol('commit now');
type Input = JsMsg | typeof CommitNow;

/** A batch handled and not yet committed: its messages and what the worker asked for each. */
interface Handled {
  msgs: JsMsg[];
  dispositions?: ReadonlyMap<number, Disposition>;
}

/** Handle a batch and commit it at once, as the runner does with a commit interval of 0 (for tests and benches that drive a worker). */
export async function handleAndCommit(worker: PartitionWorker, batch: InputEnvelope[]): Promise<void | ReadonlyMap<number, Disposition>> {
  const dispositions = await worker.handle(batch);
  await worker.commit?.();
  return dispositions;
}

class PartitionRun {
  private readonly stop = new AbortController();
  private readonly inHand = new Set<JsMsg>();
  private subscription?: Subscription;
  /** Set by abandon(): a batch still at work must not ack, even if this instance holds the partition again by then. */
  private abandoned = false;
  /** A commit of this run acked its batches: a batch handled after it is between two commits. */
  private committed = false;
  /** Batches handled since the last commit, in order. */
  private uncommitted: Handled[] = [];
  /** When the first of them was handled (performance.now()). */
  private uncommittedSince = 0;
  private commitTimer?: NodeJS.Timeout;
  /** Where a commit is asked for now (the input of the current worker's pipeline). */
  private due?: Subject<typeof CommitNow>;
  /** Counts the times the worker was dropped (nakInHand): work started before must not ack. */
  private generation = 0;
  consuming = false;
  /** Messages of the partition not yet delivered, as of the last one received, plus those in hand. */
  lag = 0;
  readonly done: Promise<void>;
  /** Runs only while messages are in hand: an idle partition keeps no timer. */
  private keepAlive?: NodeJS.Timeout;

  constructor(
    private readonly o: StageRunnerOptions,
    readonly partition: number,
  ) {
    const stream = stageInput(o.stage);
    const consumer = consumerName(o.stage, partition);
    const log = o.log.child({ partition });
    this.done = new Promise<void>((resolve) => {
      this.subscription = defer(() => from(this.prepare(log)))
        .pipe(
          switchMap((worker) => {
            this.setConsuming(true);
            // The commit timer's ticks go through the same queue as the messages, so a commit never runs during a batch.
            const due = (this.due = new Subject<typeof CommitNow>());
            const messages = partitionMessages(o.js, stream, consumer, {
              stop: this.stop.signal,
              maxMessages: o.pullMessages,
              mayPull: () => this.pullRefused(),
            }).pipe(
              tap((m) => {
                this.inHand.add(m);
                this.keepInHandAlive();
                // Handled but not yet committed is not lag: those stay in hand until the commit.
                this.lag = m.info.pending + this.inHand.size - this.uncommitted.reduce((n, b) => n + b.msgs.length, 0);
              }),
              // Stopped gracefully: what is left is committed at once.
              endWith(CommitNow),
              finalize(() => due.complete()),
            );
            return merge(messages, due).pipe(
              batchWhileBusy((items: Input[]) => from(this.process(worker, items, due)), o.batchMessages),
              finalize(() => this.clearCommitTimer()),
            );
          }),
          retry({
            resetOnSuccess: true,
            delay: (err, attempt) => {
              this.setConsuming(false);
              this.nakInHand();
              if (this.stop.signal.aborted) return EMPTY;
              const wait = Math.min(MAX_REOPEN_DELAY_MS, 250 * 2 ** (attempt - 1));
              o.stats?.record(0, 0, 1, err instanceof Error ? err.message : String(err));
              log.warn('partition failed; reopening', { error: err, attempt, delay_ms: wait });
              return timer(wait);
            },
          }),
        )
        .subscribe({
          complete: () => {
            this.stopKeepAlive();
            this.setConsuming(false);
            resolve();
          },
          error: (err) => {
            this.stopKeepAlive();
            this.setConsuming(false);
            log.error('partition stopped on error', { error: err });
            resolve();
          },
        });
    });
  }

  /**
   * Everything received and not yet acked (the batch at work and those
   * waiting behind it) is kept from being redelivered while it waits. The
   * timer stops at the first tick that finds nothing in hand.
   */
  private keepInHandAlive(): void {
    if (this.keepAlive) return;
    this.keepAlive = setInterval(
      () => {
        if (this.inHand.size > 0) this.inHand.forEach((m) => m.working());
        else this.stopKeepAlive();
      },
      Math.max(500, this.o.ackWaitMs / 3),
    );
  }

  private stopKeepAlive(): void {
    clearInterval(this.keepAlive);
    this.keepAlive = undefined;
  }

  private async prepare(log: StageRunnerOptions['log']): Promise<PartitionWorker> {
    // Its lease is held from here: opening may already write (the aggregator rewrites the partition's results).
    log.info('partition opening', { partition: this.partition });
    const { ackFloor, reset, deliveredUpTo } = await preparePartitionConsumer(this.o.jsm, this.o.stage, this.partition, {
      maxAckPending: this.o.maxAckPending,
      ackWaitMs: this.o.ackWaitMs,
    });
    if (reset)
      log.info('partition had unacknowledged messages or an earlier owner still pulling; consumer restarted at its ack floor', { ack_floor: ackFloor });
    const worker = await this.o.open(this.partition, { ackFloor, deliveredUpTo }, () => this.checkOwnership('written'));
    faultPoint('handover', { stage: this.o.stage, partition: this.partition });
    return worker;
  }

  private setConsuming(consuming: boolean) {
    if (this.consuming === consuming) return;
    this.consuming = consuming;
    this.o.onPartitionChange?.(this.partition, consuming);
  }

  /** Why this instance must not pull for the partition now (its lease may have lapsed), if it must not. */
  private pullRefused(): LeaseLostError | undefined {
    return this.abandoned || (this.o.holds && !this.o.holds(this.partition)) ? new LeaseLostError(this.partition) : undefined;
  }

  /** Throw LeaseLostError unless this instance may act for the partition now; say so, naming what is left undone. */
  private checkOwnership(left: 'handled' | 'acked' | 'written', msgs: JsMsg[] = []): void {
    if (this.abandoned || (this.o.holds && !this.o.holds(this.partition))) {
      this.o.log.warn(LeaseNotHeldMessage, { partition: this.partition, left, seqs: msgs.map((m) => m.seq) });
      throw new LeaseLostError(this.partition);
    }
  }

  private async process(worker: PartitionWorker, items: Input[], due: Subject<typeof CommitNow>): Promise<void> {
    const generation = this.generation;
    const msgs = items.filter((i): i is JsMsg => i !== CommitNow);
    if (msgs.length > 0) {
      const handled = await this.handle(worker, msgs);
      // Dropped meanwhile (the partition failed or was lost): these messages were given back already.
      if (generation !== this.generation) return;
      if (this.uncommitted.length === 0) this.uncommittedSince = performance.now();
      this.uncommitted.push(handled);
    }
    if (this.uncommitted.length === 0) return;
    if (msgs.length < items.length || this.commitDue()) await this.commit(worker, generation);
    else this.scheduleCommit(due);
  }

  /** Whether what was handled must be committed now rather than when the interval is over. */
  private commitDue(): boolean {
    const interval = this.o.commitIntervalMs ?? 0;
    return (
      interval <= 0 ||
      // Stopping: nothing waits.
      this.stop.signal.aborted ||
      performance.now() - this.uncommittedSince >= interval ||
      // Every message the consumer may have unacked is in hand, and handled: the server sends no more until some
      // are acked, and nothing else is left to do. (While some wait to be handled, they are handled first.)
      (this.inHand.size >= this.o.maxAckPending && this.uncommitted.reduce((n, b) => n + b.msgs.length, 0) >= this.inHand.size)
    );
  }

  private scheduleCommit(due: Subject<typeof CommitNow>): void {
    if (this.commitTimer) return;
    const wait = Math.max(0, this.uncommittedSince + (this.o.commitIntervalMs ?? 0) - performance.now());
    this.commitTimer = setTimeout(() => {
      this.commitTimer = undefined;
      due.next(CommitNow);
    }, wait);
  }

  private clearCommitTimer(): void {
    clearTimeout(this.commitTimer);
    this.commitTimer = undefined;
  }

  /** Hand one batch to the worker; it stays in hand, unacked, until the next commit. */
  private async handle(worker: PartitionWorker, msgs: JsMsg[]): Promise<Handled> {
    await takeTurn();
    this.checkOwnership('handled', msgs);
    // A commit acked earlier batches; those handled since (if any) and this one are not committed.
    if (this.committed && (this.uncommitted.length > 0 || !this.o.commitIntervalMs)) {
      faultPoint('between-commits', { stage: this.o.stage, partition: this.partition, uncommitted: this.uncommitted.flatMap((b) => b.msgs.map((m) => m.seq)) });
    }
    const started = performance.now();
    const envelopes: InputEnvelope[] = [];
    for (const m of msgs) {
      const info = m.info;
      try {
        envelopes.push(decodeInput(m, worker.readsIndex === true));
      } catch (err) {
        await deadLetter(this.o.js, {
          stage: this.o.stage,
          partition: this.partition,
          error: err,
          attempts: info.deliveryCount,
          originalStream: stageInput(this.o.stage),
          originalSubject: m.subject,
          originalSequence: m.seq,
          index: -1,
          payload: m.data,
        });
      }
    }
    const dispositions = envelopes.length > 0 ? await worker.handle(envelopes) : undefined;
    this.lag = Math.max(0, this.lag - msgs.length);
    const events = envelopes.reduce((n, e) => n + (e.index ?? e.events).length, 0);
    const ms = performance.now() - started;
    const stage = { stage: this.o.stage };
    this.o.metrics?.eventsIn.add(events, stage);
    this.o.metrics?.batchSize.record(events, stage);
    this.o.metrics?.processingDuration.record(ms / 1000, stage);
    const redelivered = envelopes.filter((e) => e.deliveryCount > 1).length;
    if (redelivered > 0) this.o.metrics?.redeliveries.add(redelivered, stage);
    this.o.stats?.record(events, ms);
    return { msgs, dispositions: dispositions || undefined };
  }

  /** Checkpoint (the worker), then ack or give back every batch handled since the last commit, in order. */
  private async commit(worker: PartitionWorker, generation: number): Promise<void> {
    this.clearCommitTimer();
    const batches = this.uncommitted;
    const msgs = batches.flatMap((b) => b.msgs);
    await worker.commit?.();
    faultPoint('before-ack', { stage: this.o.stage, partition: this.partition, seqs: msgs.map((m) => m.seq) });
    // Dropped while it checkpointed (the partition failed or was lost): these messages were given back already.
    if (generation !== this.generation) return;
    // The checkpoint may have taken long (a pause, a stall): the lease may have lapsed meanwhile.
    this.checkOwnership('acked', msgs);
    const confirming: Promise<boolean>[] = [];
    const confirmed: number[] = [];
    for (const { msgs, dispositions } of batches) {
      for (const m of msgs) {
        const d = dispositions?.get(m.seq);
        if (d?.kind === 'retry') m.nak(d.delayMs);
        else if (d?.kind === 'ack-confirmed') confirming.push(m.ackAck().then((ok) => ok && confirmed.push(m.seq) > 0));
        else m.ack();
        this.inHand.delete(m);
      }
    }
    this.uncommitted = [];
    this.committed = true;
    if (confirming.length > 0) {
      // An ack whose confirmation is lost leaves the worker's record in place:
      // the message comes again and is settled then.
      await Promise.allSettled(confirming);
      if (confirmed.length > 0) await worker.settled?.(confirmed);
    }
  }

  /** Give back everything received and not acked (the uncommitted batches too): the worker is dropped. */
  private nakInHand() {
    this.generation++;
    this.clearCommitTimer();
    this.uncommitted = [];
    for (const m of this.inHand) m.nak();
    this.inHand.clear();
  }

  /** Graceful: stop pulling, finish, commit and ack what was received; abandon what is left after `timeoutMs` (Infinity: wait). */
  async close(timeoutMs: number): Promise<void> {
    this.stop.abort();
    // What was handled is committed now, not when the interval or the pull under way ends.
    this.due?.next(CommitNow);
    // setTimeout takes at most 2^31-1 ms and fires after 1 ms for anything
    // larger (Infinity included): an unbounded wait must set no timer at all.
    if (timeoutMs > MAX_TIMER_MS) return this.done;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([this.done.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), timeoutMs)))]);
    clearTimeout(timer);
    if (timedOut) this.abandon();
  }

  /** Hard: drop everything now; what was in hand comes again at once. */
  abandon() {
    this.abandoned = true;
    this.stopKeepAlive();
    this.subscription?.unsubscribe();
    this.nakInHand();
    this.setConsuming(false);
  }
}

export class StageRunner {
  private readonly runs = new Map<number, PartitionRun>();
  private readonly closing = new Set<Promise<void>>();
  private ownershipSub?: Subscription;
  private lostSub?: Subscription;
  private stopping = false;

  constructor(private readonly o: StageRunnerOptions) {}

  start(): void {
    this.lostSub = this.o.lost?.subscribe((p) => {
      const run = this.runs.get(p);
      if (!run) return;
      this.runs.delete(p);
      this.o.log.warn('partition lost; stopped at once', { partition: p });
      run.abandon();
    });
    this.ownershipSub = this.o.ownership.subscribe((owned) => this.reconcile(owned));
  }

  /** Partitions being consumed now. */
  consuming(): number[] {
    return [...this.runs.values()]
      .filter((r) => r.consuming)
      .map((r) => r.partition)
      .sort((a, b) => a - b);
  }

  /** Partitions assigned to this instance. */
  assigned(): number[] {
    return [...this.runs.keys()].sort((a, b) => a - b);
  }

  /** Lag of each partition being consumed. */
  lags(): Map<number, number> {
    return new Map([...this.runs.values()].filter((r) => r.consuming).map((r) => [r.partition, r.lag]));
  }

  private reconcile(owned: ReadonlySet<number>): void {
    if (this.stopping) return;
    for (const [p, run] of this.runs) {
      if (!owned.has(p)) {
        this.runs.delete(p);
        this.finish(run, Number.POSITIVE_INFINITY);
      }
    }
    for (const p of owned) {
      if (!this.runs.has(p)) this.runs.set(p, new PartitionRun(this.o, p));
    }
  }

  /** Close a partition gracefully, then tell the owner it may release it. */
  private finish(run: PartitionRun, timeoutMs: number): void {
    const done = run
      .close(timeoutMs)
      .then(() => this.o.released?.(run.partition))
      .catch((err) => this.o.log.error('releasing a partition failed', { partition: run.partition, error: err }))
      .finally(() => this.closing.delete(done));
    this.closing.add(done);
  }

  /** Graceful stop of every partition, bounded by `timeoutMs`; each is released after. */
  async stop(timeoutMs: number): Promise<void> {
    this.stopping = true;
    this.ownershipSub?.unsubscribe();
    this.lostSub?.unsubscribe();
    for (const run of this.runs.values()) this.finish(run, timeoutMs);
    this.runs.clear();
    while (this.closing.size > 0) await Promise.all([...this.closing]);
  }
}
