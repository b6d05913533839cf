/**
 * The processor's work on one partition. The events of a batch run in
 * per-key lanes (one key in order, keys concurrently); then, per input
 * envelope, what the handler emitted is packed by destination partition and
 * type and published with ids `processor:<seq>:<p>:<type>:<n>`; failed
 * events are dead-lettered. The runner acks once all of it is stored.
 */
import type { JetStreamClient } from '@nats-io/jetstream';
import {
  chunkEvents, encodeEnvelope, encodeEnvelopeParts, partitionKeyOf, partitionOf, Streams, subjectTail, Subjects, type CloudEvent,
} from '@mesh/contracts';
import { publishAll, type EnvelopeOut } from '@mesh/messaging';
import { deadLetter, endEventSpan, errorMessage, startEventSpan, type AnyHandlerDefinition, type InputEnvelope, type Logger, type PartitionWorker } from '@mesh/runtime';
import type { MetricsRegistry } from '@mesh/telemetry';
import type { Span } from '@opentelemetry/api';
import { defaultIfEmpty, from, lastValueFrom, mergeMap } from 'rxjs';
import { runHandler, type HandlerRun } from './run-handler';

export interface ProcessorCounters {
  processed: number;
  emitted: number;
  failed: number;
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
  log: Logger;
  metrics?: MetricsRegistry;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function processorWorker(d: ProcessorWorkerDeps): PartitionWorker {
  return {
    async handle(batch: InputEnvelope[]) {
      type Item = { env: number; index: number; event: CloudEvent; handler: string };
      const items: Item[] = [];
      batch.forEach((env, e) => {
        const handler = subjectTail(env.subject, 3);
        env.events.forEach((event, index) => items.push({ env: e, index, event, handler }));
      });
      const results: HandlerRun[] = new Array(items.length);
      const spans: (Span | undefined)[] = new Array(items.length);
      const consumerGroup = `processor-p${String(d.partition).padStart(2, '0')}`;
      const log = d.log.child({ partition: d.partition });
      // Per-key lanes: one lane per key, its events in order; keys run
      // concurrently. Lanes are the unit of concurrency (not single events), so
      // a batch of thousands of events costs a few hundred lane steps.
      const lanes = new Map<string, number[]>();
      items.forEach((item, k) => {
        const key = partitionKeyOf(item.event);
        const lane = lanes.get(key);
        if (lane) lane.push(k);
        else lanes.set(key, [k]);
      });
      const runLane = async (lane: number[]) => {
        for (const k of lane) {
          const item = items[k];
          const env = batch[item.env];
          // Before the handler runs, so what it emits continues this span.
          spans[k] = startEventSpan(item.event, {
            destination: env.subject, messageId: item.event.id, partition: d.partition, batchSize: env.events.length, consumerGroup,
          });
          const def = d.handlers.get(item.handler);
          results[k] = def
            ? await runHandler(def, item.event, { partition: d.partition, log, sleep })
            : { ok: false, attempts: 1, error: new UnknownHandlerError(item.handler, [...d.handlers.keys()]) };
        }
      };
      await lastValueFrom(from(lanes.values()).pipe(mergeMap((lane) => from(runLane(lane)), d.keyConcurrency), defaultIfEmpty(null)));

      const outs: EnvelopeOut[] = [];
      const dead: Promise<unknown>[] = [];
      let k = 0;
      batch.forEach((env) => {
        const groups = new Map<string, { partition: number; type: string; events: CloudEvent[] }>();
        for (let index = 0; index < env.events.length; index++, k++) {
          const r = results[k];
          const item = items[k];
          if (!r.ok) {
            d.counters.failed++;
            d.metrics?.deadLetters.add(1, { stage: 'processor', handler: item.handler });
            endEventSpan(spans[k], r.error);
            spans[k] = undefined;
            log.warn('event dead-lettered', { handler: item.handler, id: item.event.id, attempts: r.attempts, error: errorMessage(r.error) });
            dead.push(
              deadLetter(d.js, {
                stage: 'processor', partition: d.partition, handler: item.handler, error: r.error, attempts: r.attempts,
                originalStream: Streams.routed, originalSubject: env.subject, originalSequence: env.seq, index,
                payload: encodeEnvelope([item.event]),
              }),
            );
            continue;
          }
          d.counters.processed++;
          if (r.outputs.length > 0) d.metrics?.eventsOut.add(r.outputs.length, { stage: 'processor', handler: item.handler });
          for (const out of r.outputs) {
            const p = partitionOf(partitionKeyOf(out), d.partitions);
            const g = `${p} ${out.type}`;
            let group = groups.get(g);
            if (!group) groups.set(g, (group = { partition: p, type: out.type, events: [] }));
            group.events.push(out);
          }
        }
        for (const g of groups.values()) {
          // Serialized once: the lengths size the chunks and the strings make the bodies.
          const json = g.events.map((e) => JSON.stringify(e));
          const positions = g.events.map((_, i) => i);
          chunkEvents(positions, d.maxEvents, d.maxBytes, (i) => json[i].length).forEach((chunk, n) => {
            d.counters.emitted += chunk.length;
            outs.push({
              subject: Subjects.processed(g.partition, g.type),
              msgId: `processor:${env.seq}:${g.partition}:${g.type}:${n}`,
              events: chunk.map((i) => g.events[i]),
              body: encodeEnvelopeParts(chunk.map((i) => json[i])),
            });
          });
        }
      });
      try {
        await Promise.all([publishAll(d.js, outs), ...dead]);
      } finally {
        for (const span of spans) endEventSpan(span);
      }
    },
  };
}
