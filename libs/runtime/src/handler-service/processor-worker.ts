/**
 * The processor's work on one partition. The events of a batch run in
 * per-key lanes (one key in order, keys concurrently). Per input envelope,
 * what the handlers emitted is packed by destination partition and type and
 * published with ids `processor:<seq>:<p>:<type>:<n>`; failed events are
 * dead-lettered; the runner then acks the envelope.
 *
 * A retryable failure does not hold the partition: the event waits, and so
 * do its key's later events, while everything else goes on. The envelope is
 * then split (see RetryLedger): its finished events are published under ids
 * of their own, `processor:<seq>:e<index>:<p>:<type>:<n>`, and the envelope
 * is given back with the backoff delay (a nak), to run only what waits when
 * it comes again. After its last attempt, a failing event is dead-lettered.
 *
 * One case keeps the old way, retries in process with the lane held: an
 * envelope that may have been handled whole before (a redelivery with no
 * record) may already have its whole-envelope ids stored, so it cannot be
 * split now.
 *
 * Handler state (`ctx.state`, see HandlerStateStore) is written after the
 * outputs are stored and before the runner acks. An event its key's state
 * has applied already is skipped; an envelope not split with such an event
 * was published whole before, so none of its outputs is published again
 * (its other events still run, for their keys' state).
 * An event of a handler this instance does not host, while its record in
 * `mesh_routes` says its service hosts it (a newer version of this service
 * does, in a rolling update), waits the same way, with no attempt limit,
 * until an instance that hosts it owns the partition (handler-records.ts).
 * An envelope that cannot be split then holds the partition (the batch fails
 * and the partition reopens after a backoff). A removed handler's events are
 * dead-lettered with the reason.
 */
import type { JetStreamClient } from '@nats-io/jetstream';
import {
  chunkEvents,
  encodeEnvelope,
  epochMsgId,
  encodeEnvelopeParts,
  partitionKeyOf,
  partitionOf,
  routedHandler,
  Streams,
  Subjects,
  type CloudEvent,
} from '@mesh/contracts';
import { publishAll, type EnvelopeOut } from '@mesh/messaging';
import type { AnyHandlerDefinition } from '../handler';
import { deadLetter, errorMessage } from '../dead-letter';
import { endEventSpan, startEventSpan } from '../event-spans';
import { faultPoint } from '../fault-point';
import type { Logger } from '../logger';
import { backoffDelay } from '../retry';
import type { Disposition, InputEnvelope, PartitionWorker, Resume } from '../stage-runner';
import type { MetricsRegistry } from '@mesh/telemetry';
import type { Span } from '@opentelemetry/api';
import { defaultIfEmpty, from, lastValueFrom, mergeMap } from 'rxjs';
import type { HandlerStateStore } from './handler-state';
import { HandlerMovedError, HandlerNotHostedError, HandlerRemovedError, type HandlerRecords } from './handler-records';
import type { RetryLedger, WaitingEvent } from './retry-ledger';
import { attemptHandler, retriable, retryPolicy, runHandler, type HandlerRun } from './run-handler';

export interface ProcessorCounters {
  processed: number;
  emitted: number;
  failed: number;
  /** Attempts that failed with a retryable error and were put off. */
  retried: number;
}

export class UnknownHandlerError extends Error {
  constructor(name: string, known: string[]) {
    super(`no handler named '${name}' in this processor; it has: ${known.join(', ') || 'none'}`);
    this.name = 'UnknownHandlerError';
  }
}

export interface ProcessorWorkerDeps {
  js: JetStreamClient;
  partition: number;
  partitions: number;
  handlers: ReadonlyMap<string, AnyHandlerDefinition>;
  keyConcurrency: number;
  maxEvents: number;
  maxBytes: number;
  counters: ProcessorCounters;
  /** The partition's waiting events, loaded when the partition was opened. */
  ledger: RetryLedger;
  resume: Resume;
  /** Replay epoch the partition was opened in (0: never replayed): output ids start `e<epoch>:` after a replay. */
  epoch?: number;
  log: Logger;
  metrics?: MetricsRegistry;
  /** The partition's handler state (`ctx.state`), loaded when the partition was opened. */
  state?: HandlerStateStore;
  /** Time and waiting; a test harness gives a clock it controls. Default: the system's. */
  clock?: { now(): number; sleep(ms: number): Promise<void> };
  /** The handler service this worker is part of (its stage): names its DLQ subject, metrics and spans. Default `processor`. */
  service?: string;
  /** Handler records: with them, an event of a handler not hosted here waits while its record says its service hosts it. */
  records?: HandlerRecords;
}

/** A waiting event queued behind another of its key comes back this long after it. */
const BEHIND_MS = 25;
/** The shortest delay of a nak: never a hot loop. */
const MIN_RETRY_MS = 20;
/** The longest an event waiting for a host waits between two looks. */
const MAX_HOST_WAIT_MS = 2_000;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface Item {
  env: number;
  index: number;
  event: CloudEvent;
  handler: string;
  key: string;
}

type Outcome = { kind: 'done'; run: HandlerRun } | { kind: 'wait'; waiting: WaitingEvent };

export function processorWorker(d: ProcessorWorkerDeps): PartitionWorker {
  const log = d.log.child({ partition: d.partition });
  const stage = d.service ?? 'processor';
  const consumerGroup = `${stage}-p${String(d.partition).padStart(2, '0')}`;
  const handlerOf = (item: Item) => d.handlers.get(item.handler);
  const clock = d.clock ?? { now: () => Date.now(), sleep };
  /** Looks at a handler not hosted here, per handler: the wait grows to MAX_HOST_WAIT_MS. */
  const hostWaits = new Map<string, number>();

  return {
    async handle(batch: InputEnvelope[]) {
      const now = clock.now();
      const inBatch = new Set(batch.map((env) => env.seq));
      const items: Item[] = [];
      // Whether an envelope may be split if one of its events must wait: it is
      // split already, or it was never handled before. A first delivery past
      // what the partition handed out before was not; nor was one holding an
      // event behind a key that waits from an earlier envelope (had it been
      // handled, that event would have waited then, and the envelope have a record).
      const splittable = batch.map((env) => {
        if (d.ledger.has(env.seq)) return true;
        if (env.deliveryCount === 1 && env.seq > d.resume.deliveredUpTo) return true;
        return env.events.some((event) => d.ledger.waitsBefore(partitionKeyOf(event), env.seq));
      });
      // In stream order, whatever order redeliveries came in: lanes keep it per key.
      const bySeq = batch.map((_, e) => e).sort((a, b) => batch[a].seq - batch[b].seq);
      bySeq.forEach((e) => {
        const env = batch[e];
        const handler = routedHandler(env.subject);
        const add = (index: number) => {
          const event = env.events[index];
          items.push({ env: e, index, event, handler, key: partitionKeyOf(event) });
        };
        const run = d.ledger.toRun(env.seq);
        if (run) run.forEach(add);
        else for (let index = 0; index < env.events.length; index++) add(index);
      });

      const outcomes: Outcome[] = new Array(items.length);
      // Envelopes with an event their key's state applied already (a replay).
      const replayed: boolean[] = batch.map(() => false);
      const spans: (Span | undefined)[] = new Array(items.length);

      // Per-key lanes: one lane per key, its events in order; keys run
      // concurrently. Lanes are the unit of concurrency (not single events), so
      // a batch of thousands of events costs a few hundred lane steps.
      const lanes = new Map<string, number[]>();
      items.forEach((item, k) => {
        const lane = lanes.get(item.key);
        if (lane) lane.push(k);
        else lanes.set(item.key, [k]);
      });
      const runLane = async (lane: number[]) => {
        // Once one event of the key waits, the rest of the lane waits behind it.
        let held = false;
        for (const k of lane) {
          const item = items[k];
          const env = batch[item.env];
          const before = d.ledger.waiting(env.seq, item.index);
          const attempts = before?.attempts ?? 0;
          if (d.state?.applied(item.handler, item.key, { seq: env.seq, index: item.index })) {
            replayed[item.env] = true;
            outcomes[k] = { kind: 'done', run: { ok: true, outputs: [], attempts } };
            continue;
          }
          if (!held && d.ledger.heldBackBy(item.key, env.seq, item.index, inBatch)) held = true;
          if (!held && before && before.notBefore > now) held = true;
          if (held) {
            outcomes[k] = { kind: 'wait', waiting: { index: item.index, key: item.key, attempts, notBefore: before?.notBefore ?? 0 } };
            continue;
          }
          // Before the handler runs, so what it emits continues this span.
          spans[k] = startEventSpan(item.event, {
            destination: env.subject,
            messageId: item.event.id,
            partition: d.partition,
            batchSize: env.events.length,
            consumerGroup,
          });
          const def = handlerOf(item);
          if (!def) {
            const absent = d.records ? await notHosted(d.records, item.handler, stage) : undefined;
            if (absent === 'wait') {
              if (!splittable[item.env]) throw new HandlerNotHostedError(item.handler, stage);
              const looks = (hostWaits.get(item.handler) ?? 0) + 1;
              hostWaits.set(item.handler, looks);
              endEventSpan(spans[k]);
              spans[k] = undefined;
              const wait = Math.min(MAX_HOST_WAIT_MS, 100 * 2 ** Math.min(looks, 5));
              outcomes[k] = { kind: 'wait', waiting: { index: item.index, key: item.key, attempts, notBefore: clock.now() + wait } };
              held = true;
              continue;
            }
            outcomes[k] = {
              kind: 'done',
              run: { ok: false, attempts: attempts + 1, error: absent ?? new UnknownHandlerError(item.handler, [...d.handlers.keys()]) },
            };
            continue;
          }
          const options = { partition: d.partition, log, sleep: clock.sleep, state: d.state };
          let run = await attemptHandler(def, item.event, attempts + 1, options);
          if (retriable(def, run)) {
            const delay = backoffDelay(retryPolicy(def), run.attempts);
            d.counters.retried++;
            d.metrics?.handlerRetries.add(1, { stage, handler: def.name });
            log.debug('handler failed; retrying', {
              handler: def.name,
              id: item.event.id,
              attempt: run.attempts,
              delay_ms: delay,
              error: (run as { error: unknown }).error,
            });
            if (splittable[item.env]) {
              endEventSpan(spans[k], (run as { error: unknown }).error);
              spans[k] = undefined;
              outcomes[k] = { kind: 'wait', waiting: { index: item.index, key: item.key, attempts: run.attempts, notBefore: clock.now() + delay } };
              held = true;
              continue;
            }
            await clock.sleep(delay);
            run = await runHandler(def, item.event, options, run.attempts + 1);
          }
          outcomes[k] = { kind: 'done', run };
          if (run.ok && run.state) d.state?.apply(def.name, item.key, run.state, { seq: env.seq, index: item.index });
        }
      };
      await lastValueFrom(
        from(lanes.values()).pipe(
          mergeMap((lane) => from(runLane(lane)), d.keyConcurrency),
          defaultIfEmpty(null),
        ),
      );

      // Per envelope: what waits, what is finished.
      const byEnv = batch.map(() => ({ done: [] as number[], waiting: [] as WaitingEvent[] }));
      outcomes.forEach((o, k) => {
        const slot = byEnv[items[k].env];
        if (o.kind === 'wait') slot.waiting.push(o.waiting);
        else slot.done.push(k);
      });
      const split = batch.map((env, e) => d.ledger.has(env.seq) || byEnv[e].waiting.length > 0);
      // The records first: nothing of a split envelope is published before it is known to be split.
      await Promise.all(
        batch.map((env, e) => (split[e] && !sameWaiting(d.ledger, env.seq, byEnv[e].waiting) ? d.ledger.record(env.seq, byEnv[e].waiting) : Promise.resolve())),
      );

      const outs: EnvelopeOut[] = [];
      const dead: Promise<unknown>[] = [];
      const dispositions = new Map<number, Disposition>();
      // Counted per batch: a metric update per event cost more than the handler.
      const emittedBy = new Map<string, number>();
      batch.forEach((env, e) => {
        const groups = new Map<string, { partition: number; type: string; events: CloudEvent[]; index?: number }>();
        for (const k of byEnv[e].done) {
          const o = outcomes[k] as { kind: 'done'; run: HandlerRun };
          const item = items[k];
          const r = o.run;
          if (!r.ok) {
            d.counters.failed++;
            d.metrics?.deadLetters.add(1, { stage, handler: item.handler });
            endEventSpan(spans[k], r.error);
            spans[k] = undefined;
            log.warn('event dead-lettered', { handler: item.handler, id: item.event.id, attempts: r.attempts, error: errorMessage(r.error) });
            dead.push(
              deadLetter(d.js, {
                stage,
                partition: d.partition,
                handler: item.handler,
                error: r.error,
                attempts: r.attempts,
                originalStream: Streams.routed,
                originalSubject: env.subject,
                originalSequence: env.seq,
                index: item.index,
                payload: encodeEnvelope([item.event]),
              }),
            );
            continue;
          }
          d.counters.processed++;
          // Published whole before (see the file's opening).
          if (replayed[e] && !split[e]) continue;
          if (r.outputs.length > 0) emittedBy.set(item.handler, (emittedBy.get(item.handler) ?? 0) + r.outputs.length);
          for (const out of r.outputs) {
            const p = partitionOf(partitionKeyOf(out), d.partitions);
            // A split envelope's outputs are grouped per input event too.
            const g = split[e] ? `${item.index} ${p} ${out.type}` : `${p} ${out.type}`;
            let group = groups.get(g);
            if (!group) groups.set(g, (group = { partition: p, type: out.type, events: [], index: split[e] ? item.index : undefined }));
            group.events.push(out);
          }
        }
        for (const g of groups.values()) {
          // Serialized once: the lengths size the chunks and the strings make the bodies.
          const json = g.events.map((ev) => JSON.stringify(ev));
          const positions = g.events.map((_, i) => i);
          const origin = g.index === undefined ? `${env.seq}` : `${env.seq}:e${g.index}`;
          chunkEvents(positions, d.maxEvents, d.maxBytes, (i) => json[i].length).forEach((chunk, n) => {
            d.counters.emitted += chunk.length;
            outs.push({
              subject: Subjects.processed(g.partition, g.type),
              msgId: epochMsgId(d.epoch ?? 0, `processor:${origin}:${g.partition}:${g.type}:${n}`),
              events: chunk.map((i) => g.events[i]),
              body: encodeEnvelopeParts(chunk.map((i) => json[i])),
            });
          });
        }
        if (byEnv[e].waiting.length > 0) dispositions.set(env.seq, { kind: 'retry', delayMs: retryDelay(d.ledger, env.seq, byEnv[e].waiting, clock.now()) });
        else if (split[e]) dispositions.set(env.seq, { kind: 'ack-confirmed' });
      });
      for (const [handler, n] of emittedBy) d.metrics?.eventsOut.add(n, { stage, handler });
      try {
        await Promise.all([publishAll(d.js, outs), ...dead]);
      } finally {
        for (const span of spans) endEventSpan(span);
      }
      // After the outputs: a key's state never says an event was applied before its outputs are stored.
      if (d.state?.changed) faultPoint('before-state-commit', { stage, partition: d.partition, seqs: batch.map((env) => env.seq) });
      await d.state?.commit();
      return dispositions;
    },

    async settled(seqs: number[]) {
      await d.ledger.settle(seqs);
    },
  };
}

/**
 * Why an event of a handler not hosted here is not handled: 'wait' while its
 * record says this service hosts it (another instance does), else the error
 * it is dead-lettered with (undefined: never declared, UnknownHandlerError).
 */
async function notHosted(records: HandlerRecords, handler: string, service: string): Promise<'wait' | Error | undefined> {
  const status = await records.status(handler);
  if (status.kind === 'removed') return new HandlerRemovedError(handler);
  if (status.kind === 'undeclared') return undefined;
  return status.record.service === service ? 'wait' : new HandlerMovedError(handler, service, status.record.service);
}

/** Whether the ledger already says exactly this of the envelope. */
function sameWaiting(ledger: RetryLedger, seq: number, waiting: WaitingEvent[]): boolean {
  const run = ledger.toRun(seq);
  if (!run || run.length !== waiting.length) return false;
  return waiting.every((w) => {
    const was = ledger.waiting(seq, w.index);
    return was !== undefined && was.attempts === w.attempts && was.notBefore === w.notBefore;
  });
}

/**
 * When the envelope should come again: when the first of its waiting events
 * may run, that is when the head of its key may be tried (and a little after
 * it for an event queued behind it, so the head comes first).
 */
function retryDelay(ledger: RetryLedger, seq: number, waiting: WaitingEvent[], now: number): number {
  let at = Number.POSITIVE_INFINITY;
  for (const w of waiting) {
    const head = ledger.headOf(w.key);
    const own = head && head.seq === seq && head.event.index === w.index;
    const when = head ? head.event.notBefore + (own ? 0 : BEHIND_MS) : now;
    at = Math.min(at, when);
  }
  return Math.max(MIN_RETRY_MS, at - now);
}
