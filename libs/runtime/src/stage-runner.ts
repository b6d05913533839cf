/**
 * The stage runner: consumes the partitions this instance owns, one durable
 * consumer each, and hands their messages to a PartitionWorker in batches.
 *
 * - Order: a partition's batches are handled one at a time, in stream order,
 *   and acked in that order after the worker resolves.
 * - Ack after store: the worker resolves only once its outputs are stored and
 *   its state checkpointed; only then are the inputs acked.
 * - Failure: if the worker rejects (JetStream unavailable, say), the
 *   partition's unacked messages are nak'ed, the worker is dropped and the
 *   partition reopened after a backoff: state is reloaded from its checkpoint
 *   and the messages come again in order.
 * - Retry: the worker may give an envelope back (a nak with a delay) instead
 *   of having it acked; JetStream redelivers it after the delay while the
 *   partition goes on. Keeping per-key order meanwhile is the worker's part.
 * - Malformed envelopes never reach the worker: they are dead-lettered and acked.
 * - Graceful stop: no new pulls; what was received is handled and acked.
 */
import type { JetStreamClient, JetStreamManager, JsMsg } from '@nats-io/jetstream';
import type { MetricsRegistry } from '@mesh/telemetry';
import { EndpointStats } from './endpoint-stats';
import { consumerName, stageInput, type CloudEvent, type IndexEntry, type Stage } from '@mesh/contracts';
import { partitionMessages, preparePartitionConsumer } from '@mesh/messaging';
import { defer, EMPTY, from, retry, switchMap, tap, timer, type Observable, type Subscription } from 'rxjs';
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
   * stored and state checkpointed; the runner then acks them, or does what
   * the returned map says for an envelope (by sequence). Reject to have the
   * partition reopened and the envelopes delivered again.
   */
  handle(batch: InputEnvelope[]): Promise<void | ReadonlyMap<number, Disposition>>;
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

class PartitionRun {
  private readonly stop = new AbortController();
  private readonly inHand = new Set<JsMsg>();
  private subscription?: Subscription;
  /** Set by abandon(): a batch still at work must not ack, even if this instance holds the partition again by then. */
  private abandoned = false;
  /** A batch of this run was acked: the next one is handled between two commits. */
  private committed = false;
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
            return partitionMessages(o.js, stream, consumer, { stop: this.stop.signal, maxMessages: o.pullMessages, mayPull: () => this.pullRefused() }).pipe(
              tap((m) => {
                this.inHand.add(m);
                this.keepInHandAlive();
                this.lag = m.info.pending + this.inHand.size;
              }),
              batchWhileBusy((msgs: JsMsg[]) => from(this.process(worker, msgs)), o.batchMessages),
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

  private async process(worker: PartitionWorker, msgs: JsMsg[]): Promise<void> {
    await takeTurn();
    this.checkOwnership('handled', msgs);
    if (this.committed) faultPoint('between-commits', { stage: this.o.stage, partition: this.partition });
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
    faultPoint('before-ack', { stage: this.o.stage, partition: this.partition, seqs: msgs.map((m) => m.seq) });
    // The worker may have taken long (a pause, a stall): the lease may have lapsed meanwhile.
    this.checkOwnership('acked', msgs);
    const confirming: Promise<boolean>[] = [];
    const confirmed: number[] = [];
    for (const m of msgs) {
      const d = dispositions?.get(m.seq);
      if (d?.kind === 'retry') m.nak(d.delayMs);
      else if (d?.kind === 'ack-confirmed') confirming.push(m.ackAck().then((ok) => ok && confirmed.push(m.seq) > 0));
      else m.ack();
      this.inHand.delete(m);
    }
    this.committed = true;
    if (confirming.length > 0) {
      // An ack whose confirmation is lost leaves the worker's record in place:
      // the message comes again and is settled then.
      await Promise.allSettled(confirming);
      if (confirmed.length > 0) await worker.settled?.(confirmed);
    }
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
  }

  private nakInHand() {
    for (const m of this.inHand) m.nak();
    this.inHand.clear();
  }

  /** Graceful: stop pulling, finish and ack what was received; abandon what is left after `timeoutMs` (Infinity: wait). */
  async close(timeoutMs: number): Promise<void> {
    this.stop.abort();
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
