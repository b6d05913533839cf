/**
 * A test kit for handler authors, in the spirit of Kafka Streams'
 * TopologyTestDriver: no NATS, no processes, a clock the test moves.
 *
 * It runs the services' own code: the processor's partition worker (per-key
 * lanes, retries by a nak with a delay, the retry ledger, dead letters with
 * their headers, `ctx.state` and its checkpoint) and the aggregator's window
 * state, over in-memory stand-ins for the few JetStream calls they make. It
 * plays the stage runner's part: it routes each event sent to the handlers
 * that take its type (one envelope per handler and partition, as the router
 * does), hands each partition's due envelopes to its worker in a batch, acks
 * or redelivers them as the worker says, and feeds what the handlers emit to
 * the aggregations.
 *
 * Time is the harness's: the worker's clock, the backoff of retries and the
 * default event time all read it, and only `advance(ms)` moves it (an
 * in-process retry's wait moves it too). Everything runs to quiescence before
 * `send` and `advance` resolve, so a test reads results right after.
 *
 * A batch the worker rejects (a checkpoint write failed: see
 * `checkpoints.failNextWrite`) is handled as the stage runner does: the
 * partition is reopened from its checkpoints and the batch delivered again.
 *
 * `send(events, { crash: 'before-ack' })` handles the events, then crashes
 * before the acks: the partitions are reopened from their checkpoints (retry
 * records and handler state) and the unacked envelopes delivered again, as
 * after a SIGKILL of the processor. State and outputs must come out as if
 * each event ran once.
 */
import { decodeEnvelope, encodeEnvelope, handlerStatePrefix, partitionKeyOf, partitionOf, Subjects, validateEvent, type CloudEvent } from '@mesh/contracts';
import {
  handlerTakes,
  HandlerStateStore,
  PartitionWindows,
  processorWorker,
  registry,
  RetryLedger,
  type AggregationDefinition,
  type AnyHandlerDefinition,
  type Disposition,
  type InputEnvelope,
  type LogFields,
  type Logger,
  type PartitionWorker,
  type ProcessorCounters,
  type WindowResult,
} from '@mesh/runtime';
import { MemoryCheckpoints, MemoryStreams, type StoredMessage } from './memory-jetstream';

/** An event to send: what is left out is filled (id, source, time from the harness clock, specversion). */
export type HarnessEvent = Omit<CloudEvent, 'specversion' | 'id' | 'source'> & Partial<Pick<CloudEvent, 'specversion' | 'id' | 'source'>>;

export interface HandlerHarnessOptions {
  handlers: readonly AnyHandlerDefinition[];
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  aggregations?: readonly AggregationDefinition<any, any>[];
  /** MESH_PARTITIONS; default 16. */
  partitions?: number;
  /** Start of the harness clock (epoch ms, a Date or an ISO string); default 2026-01-01T00:00:00Z. */
  clock?: number | Date | string;
  /** The aggregator's MESH_ALLOWED_LATENESS, in ms; default one minute. */
  allowedLatenessMs?: number;
  /** Most envelopes handed to a worker at once; default 100. */
  batchMessages?: number;
  /** Handler logs (ctx.log and the runtime's) go here; default: dropped. */
  log?: (level: string, msg: string, fields: LogFields) => void;
}

/** A retry the runtime scheduled: the attempt that failed and the delay before the next. */
export interface HarnessRetry {
  handler: string;
  /** The id of the input event. */
  id: string;
  attempt: number;
  delayMs: number;
  error: string;
}

/** A dead letter as the processor writes it: the event and the headers naming stage, handler, error and attempts. */
export interface HarnessDeadLetter {
  subject: string;
  event: CloudEvent;
  headers: Record<string, string>;
}

export interface SendOptions {
  /** After handling, crash before the acks: reopen the partitions from their checkpoints and deliver again. */
  crash?: 'before-ack';
}

interface Message {
  seq: number;
  subject: string;
  partition: number;
  events: CloudEvent[];
  data: Uint8Array;
  timestampMs: number;
  deliveryCount: number;
  dueAt: number;
}

interface OpenPartition {
  worker: PartitionWorker;
  state: HandlerStateStore;
}

const RetryingMessage = 'handler failed; retrying';
/** A partition whose batch fails this often in a row fails the harness call: a test must not spin. */
const MaxFailures = 5;

export interface HandlerHarness {
  /** Send events (one or a list, routed and enveloped as the router does) and run until nothing is due. */
  send(events: HarnessEvent | readonly HarnessEvent[], options?: SendOptions): Promise<void>;
  /** Move the clock by `ms`, delivering every retry that falls due on the way, in time order. */
  advance(ms: number): Promise<void>;
  /** The harness clock (epoch ms). */
  now(): number;
  /** Events the handlers emitted and that were stored (duplicates dropped, as the stream does), optionally of one type. */
  emitted(type?: string): CloudEvent[];
  /** Retries scheduled so far, in order. */
  retries(): HarnessRetry[];
  /** Dead letters so far, in order. */
  deadLetters(): HarnessDeadLetter[];
  /** A handler's state for a partition key (undefined when none). */
  state<T = unknown>(handler: string, key: string): T | undefined;
  /** An aggregation's result for a key, as `GET /v1/aggregates/:name/:key` serves it (undefined when none). */
  aggregates(name: string, key: string): WindowResult | undefined;
  /** Envelopes not acked yet (events waiting for a retry). */
  pending(): number;
  /** The processor's counters (processed, emitted, failed, retried). */
  readonly counters: Readonly<ProcessorCounters>;
  /** The in-memory checkpoints bucket (retry records and handler state), for a test that looks inside. */
  readonly checkpoints: MemoryCheckpoints;
}

function startTime(clock: HandlerHarnessOptions['clock']): number {
  if (clock === undefined) return Date.parse('2026-01-01T00:00:00Z');
  const ms = clock instanceof Date ? clock.getTime() : typeof clock === 'string' ? Date.parse(clock) : clock;
  if (!Number.isFinite(ms)) throw new Error(`harness clock must be epoch ms, a Date or an ISO 8601 time, got ${JSON.stringify(clock)}`);
  return ms;
}

export function createHandlerHarness(options: HandlerHarnessOptions): HandlerHarness {
  const partitions = options.partitions ?? 16;
  if (!Number.isInteger(partitions) || partitions < 1) throw new Error(`partitions must be a positive integer, got ${JSON.stringify(options.partitions)}`);
  const byName = registry('handler', options.handlers);
  const aggregations = options.aggregations ?? [];
  registry('aggregation', aggregations);
  const batchMessages = options.batchMessages ?? 100;
  let now = startTime(options.clock);
  let nextSeq = 1;
  let nextId = 1;

  const checkpoints = new MemoryCheckpoints();
  const counters: ProcessorCounters = { processed: 0, emitted: 0, failed: 0, retried: 0 };
  const emitted: CloudEvent[] = [];
  const deadLetters: HarnessDeadLetter[] = [];
  const retries: HarnessRetry[] = [];
  const results = new Map<string, WindowResult>();
  const windows = new Map<number, PartitionWindows>();

  const aggregate = (partition: number, events: CloudEvent[]) => {
    if (aggregations.length === 0) return;
    let w = windows.get(partition);
    if (!w) windows.set(partition, (w = new PartitionWindows(aggregations, { defaultLatenessMs: options.allowedLatenessMs ?? 60_000, retainClosed: 60 })));
    for (const event of events) w.apply(event, now);
    w.closeDue();
    for (const r of w.takeDirty()) results.set(`${r.name}\u0000${r.key}`, r);
  };

  const onStored = (m: StoredMessage) => {
    const [, stage, p] = m.subject.split('.');
    if (stage === 'processed') {
      const events = decodeEnvelope(m.data);
      emitted.push(...events);
      aggregate(Number(p), events);
    } else if (stage === 'dlq') {
      deadLetters.push({ subject: m.subject, event: decodeEnvelope(m.data)[0], headers: m.headers });
    }
  };
  const streams = new MemoryStreams(onStored);

  const logger = (fields: LogFields): Logger => {
    const at = (level: string) => (msg: string, more?: LogFields) => {
      const all = { ...fields, ...more };
      if (level === 'debug' && msg === RetryingMessage && typeof all.id === 'string') {
        const error = all.error;
        retries.push({
          handler: String(all.handler),
          id: all.id,
          attempt: Number(all.attempt),
          delayMs: Number(all.delay_ms),
          error: error instanceof Error ? error.message : String(error),
        });
      }
      options.log?.(level, msg, all);
    };
    return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: (more) => logger({ ...fields, ...more }) };
  };
  const log = logger({ service: 'harness' });

  const messages = new Map<number, Message[]>();
  const open = new Map<number, OpenPartition>();
  /** Highest sequence delivered per partition: what a reopened partition may have handled before. */
  const delivered = new Map<number, number>();
  const acked = new Map<number, Set<number>>();
  /** Batches of a partition that failed in a row (the worker rejected). */
  const failures = new Map<number, number>();

  const ackFloor = (p: number): number => {
    const done = acked.get(p) ?? new Set<number>();
    const waiting = (messages.get(p) ?? []).map((m) => m.seq);
    const lowest = waiting.length > 0 ? Math.min(...waiting) : Number.POSITIVE_INFINITY;
    let floor = 0;
    for (const seq of done) if (seq < lowest && seq > floor) floor = seq;
    return floor;
  };

  const openPartition = async (p: number): Promise<OpenPartition> => {
    const existing = open.get(p);
    if (existing) return existing;
    const resume = { ackFloor: ackFloor(p), deliveredUpTo: delivered.get(p) ?? 0 };
    // The same loads as the processor's when it takes a partition.
    const ledger = await RetryLedger.load(checkpoints as never, checkpoints as never, p, resume.ackFloor);
    const state = await HandlerStateStore.load(checkpoints, checkpoints as never, handlerStatePrefix(p));
    const worker = processorWorker({
      js: streams as never,
      partition: p,
      partitions,
      handlers: byName,
      keyConcurrency: 64,
      maxEvents: 500,
      maxBytes: 512 * 1024,
      counters,
      ledger,
      resume,
      log,
      state,
      clock: {
        now: () => now,
        sleep: async (ms) => {
          now += ms;
        },
      },
    });
    const opened = { worker, state };
    open.set(p, opened);
    return opened;
  };

  /** One batch of a partition's due envelopes; false when none was due. */
  const step = async (p: number, crash: boolean): Promise<boolean> => {
    const queue = messages.get(p) ?? [];
    const due = queue
      .filter((m) => m.dueAt <= now)
      .sort((a, b) => a.seq - b.seq)
      .slice(0, batchMessages);
    if (due.length === 0) return false;
    const { worker } = await openPartition(p);
    const batch: InputEnvelope[] = due.map((m) => ({
      seq: m.seq,
      subject: m.subject,
      timestampMs: m.timestampMs,
      deliveryCount: m.deliveryCount,
      redriven: false,
      events: m.events,
      data: m.data,
    }));
    for (const m of due) delivered.set(p, Math.max(delivered.get(p) ?? 0, m.seq));
    let dispositions: ReadonlyMap<number, Disposition>;
    try {
      dispositions = (await worker.handle(batch)) ?? new Map<number, Disposition>();
      failures.delete(p);
    } catch (err) {
      // As the stage runner does: the partition is reopened from its checkpoints and the batch comes again.
      const n = (failures.get(p) ?? 0) + 1;
      if (n >= MaxFailures) throw new Error(`harness: partition ${p} failed ${n} times in a row; last: ${(err as Error).message}`, { cause: err });
      failures.set(p, n);
      open.delete(p);
      for (const m of due) m.deliveryCount++;
      return true;
    }
    if (crash) {
      // Killed before the acks: everything comes again to a partition reopened from its checkpoints.
      open.delete(p);
      for (const m of due) m.deliveryCount++;
      return true;
    }
    const confirmed: number[] = [];
    for (const m of due) {
      const d = dispositions.get(m.seq);
      if (d?.kind === 'retry') {
        m.deliveryCount++;
        m.dueAt = now + d.delayMs;
        continue;
      }
      if (d?.kind === 'ack-confirmed') confirmed.push(m.seq);
      queue.splice(queue.indexOf(m), 1);
      let done = acked.get(p);
      if (!done) acked.set(p, (done = new Set()));
      done.add(m.seq);
    }
    if (confirmed.length > 0) await worker.settled?.(confirmed);
    return true;
  };

  /** Run every partition until nothing is due now. */
  const drain = async (crash = false) => {
    for (let busy = true; busy;) {
      busy = false;
      for (const p of [...messages.keys()].sort((a, b) => a - b)) {
        const crashHere = crash;
        while (await step(p, crashHere)) {
          busy = true;
          if (crashHere) break;
        }
      }
      crash = false;
    }
  };

  const complete = (e: HarnessEvent): CloudEvent => {
    const event = { specversion: '1.0', id: `event-${nextId++}`, source: 'test://harness', time: new Date(now).toISOString(), ...e } as CloudEvent;
    const problems = validateEvent(event);
    if (problems.length > 0) {
      throw new Error(
        `harness: event ${JSON.stringify(event.id)} is not a valid CloudEvent: ${problems.map((p) => `${p.attribute || 'event'} ${p.problem}`).join('; ')}`,
      );
    }
    return event;
  };

  return {
    checkpoints,
    counters,
    async send(input, sendOptions = {}) {
      const list = (Array.isArray(input) ? input : [input]) as HarnessEvent[];
      // Per handler and partition, one envelope in the order given, as the router sends them.
      const envelopes = new Map<string, { partition: number; handler: string; events: CloudEvent[] }>();
      for (const raw of list) {
        const event = complete(raw);
        const takers = [...byName.values()].filter((h) => handlerTakes(h, event.type));
        if (takers.length === 0) {
          throw new Error(`harness: no handler takes events of type ${JSON.stringify(event.type)}; handlers: ${[...byName.keys()].join(', ') || 'none'}`);
        }
        const partition = partitionOf(partitionKeyOf(event), partitions);
        for (const h of takers) {
          const k = `${h.name} ${partition}`;
          const env = envelopes.get(k) ?? { partition, handler: h.name, events: [] };
          env.events.push(event);
          envelopes.set(k, env);
        }
      }
      for (const env of envelopes.values()) {
        const queue = messages.get(env.partition) ?? [];
        messages.set(env.partition, queue);
        queue.push({
          seq: nextSeq++,
          subject: Subjects.routed('processor', env.partition, env.handler),
          partition: env.partition,
          events: env.events,
          data: encodeEnvelope(env.events),
          timestampMs: now,
          deliveryCount: 1,
          dueAt: now,
        });
      }
      await drain(sendOptions.crash === 'before-ack');
    },
    async advance(ms) {
      if (!(ms >= 0)) throw new Error(`advance takes a non-negative number of milliseconds, got ${JSON.stringify(ms)}`);
      const until = now + ms;
      for (;;) {
        let next = Number.POSITIVE_INFINITY;
        for (const queue of messages.values()) for (const m of queue) if (m.dueAt > now && m.dueAt <= until) next = Math.min(next, m.dueAt);
        if (next === Number.POSITIVE_INFINITY) break;
        now = next;
        await drain();
      }
      now = until;
      await drain();
    },
    now: () => now,
    emitted: (type) => (type === undefined ? [...emitted] : emitted.filter((e) => e.type === type)),
    retries: () => [...retries],
    deadLetters: () => [...deadLetters],
    state<T>(handler: string, key: string): T | undefined {
      if (!byName.has(handler)) throw new Error(`harness: no handler named ${JSON.stringify(handler)}; handlers: ${[...byName.keys()].join(', ')}`);
      return open.get(partitionOf(key, partitions))?.state.get<T>(handler, key);
    },
    aggregates(name, key) {
      if (!aggregations.some((a) => a.name === name)) {
        throw new Error(`harness: no aggregation named ${JSON.stringify(name)}; aggregations: ${aggregations.map((a) => a.name).join(', ') || 'none'}`);
      }
      return results.get(`${name}\u0000${key}`);
    },
    pending: () => [...messages.values()].reduce((n, q) => n + q.length, 0),
  };
}
