/**
 * The sink's loop: results from JetStream into PostgreSQL, effectively once.
 *
 * - Source: the durable consumer `sink` on `KV_mesh_aggregates` (see
 *   sink-consumer.ts for why that stream), pulled with partitionMessages.
 * - Batches: an update is written once `batchSize` are waiting or
 *   `flushInterval` after the loop found it waiting, whichever comes first;
 *   one write at a time, each one upsert of the newest update of every
 *   window in the batch (see results-table.ts).
 * - Ack after commit: a batch's messages are acked only once PostgreSQL
 *   has committed the upsert. A crash before that leaves them unacked and
 *   JetStream delivers them again; writing them again changes nothing,
 *   since a row takes only an update newer than the one it holds.
 * - PostgreSQL away: the write is retried with backoff (retryMin doubling
 *   to retryMax) for as long as it takes; meanwhile the messages held are
 *   marked in progress, so JetStream neither redelivers them nor sends more
 *   than max_ack_pending, and keeps the rest. Readiness (`postgres`) is
 *   false until a write or a probe succeeds again.
 * - Deleted or purged KV keys are acked and leave the table as it is: the
 *   rows keep a key's last results.
 * - Graceful stop: no new pulls; what was received is written and acked,
 *   unless PostgreSQL stays away past the stop timeout (then it stays
 *   unacked and is delivered again later).
 */
import type { JetStreamClient, JetStreamManager, JsMsg } from '@nats-io/jetstream';
import type { Pool } from 'pg';
import { partitionMessages, redactUrl } from '@mesh/messaging';
import { backoffDelay, type Logger, type RetryPolicy } from '@mesh/runtime';
import type { Subscription } from 'rxjs';
import { ensureResultsTable, upsertWindows } from './results-table';
import { ensureSinkConsumer, ResultsStream } from './sink-consumer';
import { SinkConsumer } from '@mesh/contracts';
import { newestPerWindow, windowRows, type WindowRow } from './window-rows';

export interface ResultsSinkOptions {
  js: JetStreamClient;
  jsm: JetStreamManager;
  pool: Pool;
  log: Logger;
  batchSize: number;
  flushIntervalMs: number;
  retryMinMs: number;
  retryMaxMs: number;
  ackWaitMs: number;
  /** How often PostgreSQL is probed while no write tells whether it answers. */
  probeIntervalMs?: number;
}

export interface SinkCounters {
  /** Updates (KV messages) written and acked. */
  updates: number;
  /** Rows that took an update. */
  rowsWritten: number;
  /** Writes that failed and were retried. */
  retries: number;
  /** Messages acked without a write: deleted keys, malformed values. */
  skipped: number;
}

export class ResultsSink {
  readonly counters: SinkCounters = { updates: 0, rowsWritten: 0, retries: 0, skipped: 0 };
  private postgresUp = false;
  private buffer: JsMsg[] = [];
  private sourceDone = false;
  private readonly stopPulling = new AbortController();
  private hardStopped = false;
  private readonly waiters = new Set<() => void>();
  private source?: Subscription;
  private running?: Promise<void>;
  private probe?: NodeJS.Timeout;
  private lastWriteAt = 0;
  private readonly retry: RetryPolicy;

  constructor(private readonly o: ResultsSinkOptions) {
    this.retry = { maxAttempts: Number.POSITIVE_INFINITY, initialDelayMs: o.retryMinMs, maxDelayMs: o.retryMaxMs, multiplier: 2, jitter: 0.2 };
  }

  /** Whether PostgreSQL took the last write or probe. */
  get postgresReady(): boolean {
    return this.postgresUp;
  }

  start(): void {
    this.running = this.run().catch((err) => {
      this.o.log.error('the sink stopped', { error: redactUrl((err as Error).message) });
      throw err;
    });
    const every = this.o.probeIntervalMs ?? 2_000;
    this.probe = setInterval(() => {
      if (Date.now() - this.lastWriteAt < every) return;
      this.o.pool.query('SELECT 1').then(
        () => this.setPostgres(true),
        (err: Error) => this.setPostgres(false, err),
      );
    }, every);
    this.probe.unref();
  }

  /** Stop pulling, write and ack what was received, within `timeoutMs`. */
  async stop(timeoutMs: number): Promise<void> {
    clearInterval(this.probe);
    this.stopPulling.abort();
    this.notify();
    const timedOut = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), timeoutMs).unref());
    if ((await Promise.race([this.running?.catch(() => undefined), timedOut])) === 'timeout') {
      // PostgreSQL is still away: what is held stays unacked and comes again.
      this.hardStopped = true;
      this.notify();
      this.o.log.warn('stopped with updates not yet written; JetStream delivers them again', { held: this.buffer.length });
    }
    this.source?.unsubscribe();
  }

  private async run(): Promise<void> {
    await this.retrying('create the table mesh_aggregates', () => ensureResultsTable(this.o.pool), [], true);
    if (this.hardStopped) return;
    this.setPostgres(true);
    await this.subscribe();
    for (;;) {
      if (this.hardStopped) return;
      if (this.buffer.length === 0) {
        if (this.sourceDone) return;
        await this.waitForWake();
        continue;
      }
      // Linger so that a trickle of updates makes one write, not one each.
      if (this.buffer.length < this.o.batchSize && !this.sourceDone) await this.waitForWake(this.o.flushIntervalMs);
      const batch = this.buffer.splice(0, this.o.batchSize);
      await this.write(batch);
      if (this.hardStopped) return;
      for (const m of batch) m.ack();
      this.counters.updates += batch.length;
    }
  }

  /** Pull from the durable consumer; if the pull fails (the consumer was deleted, NATS away), take it up again after a backoff. */
  private async subscribe(attempt = 0): Promise<void> {
    await this.retrying(
      'prepare the JetStream consumer sink',
      () => ensureSinkConsumer(this.o.jsm, { ackWaitMs: this.o.ackWaitMs, maxAckPending: 2 * this.o.batchSize }),
      [],
      false,
    );
    this.source = partitionMessages(this.o.js, ResultsStream, SinkConsumer, {
      maxMessages: this.o.batchSize,
      expiresMs: 2_000,
      stop: this.stopPulling.signal,
    }).subscribe({
      next: (m) => {
        this.buffer.push(m);
        // The first wakes an idle loop; a full batch ends the linger.
        if (this.buffer.length === 1 || this.buffer.length >= this.o.batchSize) this.notify();
      },
      error: (err: Error) => {
        const delay = backoffDelay(this.retry, attempt + 1);
        this.o.log.warn('pulling results failed; pulling again', { error: err.message, retry_in_ms: delay });
        setTimeout(() => void this.subscribe(attempt + 1).catch(() => undefined), delay).unref();
      },
      complete: () => {
        this.sourceDone = true;
        this.notify();
      },
    });
  }

  /** Write the newest update of every window in `batch`, retrying until PostgreSQL commits it (or a hard stop). */
  private async write(batch: JsMsg[]): Promise<void> {
    const rows: WindowRow[] = [];
    for (const m of batch) {
      const op = m.headers?.get('KV-Operation');
      if (op === 'DEL' || op === 'PURGE' || m.data.length === 0) {
        this.counters.skipped++;
        continue;
      }
      try {
        rows.push(...windowRows(m.subject, m.seq, m.string()));
      } catch (err) {
        // It can never be written; holding it would stop the sink for good.
        this.counters.skipped++;
        this.o.log.warn('skipping a result that is not one', { error: (err as Error).message });
      }
    }
    const newest = newestPerWindow(rows);
    const written = await this.retrying('write results to PostgreSQL', () => upsertWindows(this.o.pool, newest), batch, true);
    if (written !== undefined) {
      this.counters.rowsWritten += written;
      this.lastWriteAt = Date.now();
      this.setPostgres(true);
      this.o.log.debug('wrote results', { updates: batch.length, windows: newest.length, rows_taken: written });
    }
  }

  /**
   * Run `op` until it succeeds, waiting with backoff between attempts;
   * `held` messages are kept in progress meanwhile (and the ones buffered
   * behind them); `postgres` says a failure means PostgreSQL is away.
   * Resolves undefined only on a hard stop.
   */
  private async retrying<T>(what: string, op: () => Promise<T>, held: readonly JsMsg[], postgres: boolean): Promise<T | undefined> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await op();
      } catch (err) {
        if (this.hardStopped) return undefined;
        this.counters.retries++;
        if (postgres) this.setPostgres(false, err as Error);
        const delay = backoffDelay(this.retry, attempt);
        this.o.log.warn(`cannot ${what}; retrying`, {
          error: redactUrl((err as Error).message),
          attempt,
          retry_in_ms: delay,
          held: held.length + this.buffer.length,
        });
        for (const m of [...held, ...this.buffer]) m.working();
        await this.waitForWake(delay, true);
        if (this.hardStopped) return undefined;
      }
    }
  }

  private setPostgres(up: boolean, err?: Error): void {
    if (up && !this.postgresUp) this.o.log.info('PostgreSQL answers');
    if (!up && this.postgresUp) this.o.log.warn('PostgreSQL does not answer', { error: redactUrl(err?.message ?? '') });
    this.postgresUp = up;
  }

  private notify(): void {
    for (const waiter of [...this.waiters]) waiter();
  }

  /** Until notified (more updates, the source ended, a stop) or `ms` passed; `onlyHardStop` ignores every notice but a hard stop. */
  private waitForWake(ms?: number, onlyHardStop = false): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve();
      };
      const check = () => {
        if (!onlyHardStop || this.hardStopped) done();
      };
      const timer = ms === undefined ? undefined : setTimeout(done, ms);
      this.waiters.add(check);
    });
  }
}
