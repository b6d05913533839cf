/**
 * The router's work on one partition: drop duplicates, decide each event's
 * handlers (by the envelope's index: the bodies are not parsed unless an
 * event needs more than its entry), and publish one envelope per input
 * envelope and handler, its bytes cut from the input's, on
 * `mesh.routed.<service>.<p>.<handler>`, the subject of the handler
 * service hosting it (id `router:<seq>:<handler>`, `e<epoch>:`
 * before it after a replay). Unroutable
 * events are dead-lettered; dropped ones are counted.
 */
import type { JetStreamClient } from '@nats-io/jetstream';
import { encodeEnvelope, encodeIndex, epochMsgId, MalformedEnvelopeError, sliceEnvelope, Streams, Subjects, type IndexEntry } from '@mesh/contracts';
import { publishAll, type EnvelopeOut, type RawEnvelopeOut } from '@mesh/messaging';
import { deadLetter, endEventSpan, startEventSpan, type InputEnvelope, type Logger, type PartitionWorker } from '@mesh/runtime';
import type { MetricsRegistry } from '@mesh/telemetry';
import type { Span } from '@opentelemetry/api';
import { DedupWindow } from './dedup-window';
import type { Routable, RouteTable } from './route-table';

export interface RouterCounters {
  routed: number;
  duplicates: number;
  dropped: number;
  unroutable: number;
}

export class UnroutableError extends Error {
  constructor(type: string) {
    super(`no route for event type '${type}': no rule matches it and no handler declares it`);
    this.name = 'UnroutableError';
  }
}

export function routerWorker(deps: {
  js: JetStreamClient;
  partition: number;
  table: RouteTable;
  dedup: DedupWindow;
  counters: RouterCounters;
  log: Logger;
  metrics?: MetricsRegistry;
  /** Replay epoch the partition was opened in (0: never replayed). */
  epoch?: number;
}): PartitionWorker {
  const { js, partition, table, dedup, counters, metrics } = deps;
  const epoch = deps.epoch ?? 0;
  const consumerGroup = `router-p${String(partition).padStart(2, '0')}`;
  const needsEvent = (x: IndexEntry) => x.sampled || table.needsEvent(x.type) || table.route(x).kind === 'unroutable';
  // A body that does not match its index is dead-lettered whole, as the stage runner does with any malformed envelope.
  const deadLetterEnvelope = (env: InputEnvelope, error: MalformedEnvelopeError) => {
    metrics?.deadLetters.add(1, { stage: 'router' });
    return deadLetter(js, {
      stage: 'router',
      partition,
      error,
      attempts: env.deliveryCount,
      originalStream: Streams.ingest,
      originalSubject: env.subject,
      originalSequence: env.seq,
      index: -1,
      payload: env.data,
    });
  };
  return {
    readsIndex: true,
    async handle(batch: InputEnvelope[]) {
      const outs: (EnvelopeOut | RawEnvelopeOut)[] = [];
      const dead: Promise<unknown>[] = [];
      const spans: Span[] = [];
      for (const env of batch) {
        // What routing reads of each event: its index entry, or (an envelope without an index) the event.
        const items: readonly Routable[] = env.index ?? env.events;
        const fresh: number[] = [];
        items.forEach((x, i) => {
          // A redriven event was seen before by definition; its message id keeps it from being stored twice.
          if (!env.redriven && dedup.seen(DedupWindow.keyOf(x.source, x.id), env.timestampMs)) counters.duplicates++;
          else fresh.push(i);
        });
        // The body is parsed only for an event that needs more than its entry:
        // a sampled trace to continue, a rule's `where` on another attribute,
        // or the event itself for its dead letter.
        let events = env.index ? undefined : env.events;
        if (!events && fresh.some((i) => needsEvent(env.index![i]))) {
          try {
            events = env.events;
          } catch (err) {
            if (!(err instanceof MalformedEnvelopeError)) throw err;
            dead.push(deadLetterEnvelope(env, err));
            continue;
          }
        }
        const byHandler = new Map<string, number[]>();
        // A sampled event gets the router's span as its new traceparent: its bytes change.
        let rewritten = false;
        for (const index of fresh) {
          const event = events?.[index];
          const span = event && startEventSpan(event, { destination: env.subject, messageId: event.id, partition, batchSize: items.length, consumerGroup });
          const decision = table.route(event ?? items[index]);
          if (decision.kind === 'drop') {
            counters.dropped++;
            endEventSpan(span);
            continue;
          }
          if (decision.kind === 'unroutable') {
            counters.unroutable++;
            metrics?.deadLetters.add(1, { stage: 'router' });
            const error = new UnroutableError(items[index].type);
            endEventSpan(span, error);
            dead.push(
              deadLetter(js, {
                stage: 'router',
                partition,
                error,
                attempts: 1,
                originalStream: Streams.ingest,
                originalSubject: env.subject,
                originalSequence: env.seq,
                index,
                payload: encodeEnvelope([event!]),
              }),
            );
            continue;
          }
          if (span) {
            spans.push(span);
            rewritten = true;
          }
          for (const h of decision.handlers) {
            let list = byHandler.get(h);
            if (!list) byHandler.set(h, (list = []));
            list.push(index);
          }
        }
        for (const [handler, positions] of byHandler) {
          counters.routed += positions.length;
          metrics?.eventsOut.add(positions.length, { stage: 'router', handler });
          const subject = Subjects.routed(table.serviceOf(handler), partition, handler);
          const msgId = epochMsgId(epoch, `router:${env.seq}:${handler}`);
          if (rewritten || (!env.index && positions.length < items.length)) {
            outs.push({ subject, msgId, events: positions.map((i) => events![i]) });
          } else if (positions.length === items.length) {
            // Every event of the envelope, unchanged and in order: forward its bytes, and its index, as they came.
            outs.push({ subject, msgId, count: positions.length, body: env.data, index: env.indexHeader });
          } else {
            // Some of them: cut from the body by the index, still without parsing or serializing an event.
            const index = env.index!;
            outs.push({
              subject,
              msgId,
              count: positions.length,
              body: sliceEnvelope(env.data, index, positions),
              index: encodeIndex(positions.map((i) => index[i])),
            });
          }
        }
      }
      try {
        await Promise.all([publishAll(js, outs), ...dead]);
      } finally {
        for (const span of spans) endEventSpan(span);
      }
    },
  };
}
