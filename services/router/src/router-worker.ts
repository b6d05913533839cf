/**
 * The router's work on one partition: drop duplicates, decide each event's
 * handlers, and publish one envelope per input envelope and handler on
 * `mesh.routed.<service>.<p>.<handler>`, the subject of the handler
 * service hosting it (id `router:<seq>:<handler>`, `e<epoch>:`
 * before it after a replay). Unroutable
 * events are dead-lettered; dropped ones are counted.
 */
import type { JetStreamClient } from '@nats-io/jetstream';
import { encodeEnvelope, epochMsgId, Streams, Subjects, type CloudEvent } from '@mesh/contracts';
import { publishAll, type EnvelopeOut } from '@mesh/messaging';
import { deadLetter, endEventSpan, startEventSpan, type InputEnvelope, type Logger, type PartitionWorker } from '@mesh/runtime';
import type { MetricsRegistry } from '@mesh/telemetry';
import type { Span } from '@opentelemetry/api';
import { DedupWindow } from './dedup-window';
import type { RouteTable } from './route-table';

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
  return {
    async handle(batch: InputEnvelope[]) {
      const outs: EnvelopeOut[] = [];
      const dead: Promise<unknown>[] = [];
      const spans: Span[] = [];
      for (const env of batch) {
        const byHandler = new Map<string, CloudEvent[]>();
        // A sampled event gets the router's span as its new traceparent: its bytes change.
        let rewritten = false;
        env.events.forEach((event, index) => {
          // A redriven event was seen before by definition; its message id keeps it from being stored twice.
          if (!env.redriven && dedup.seen(DedupWindow.keyOf(event.source, event.id), env.timestampMs)) {
            counters.duplicates++;
            return;
          }
          const span = startEventSpan(event, { destination: env.subject, messageId: event.id, partition, batchSize: env.events.length, consumerGroup });
          const decision = table.route(event);
          if (decision.kind === 'drop') {
            counters.dropped++;
            endEventSpan(span);
            return;
          }
          if (decision.kind === 'unroutable') {
            counters.unroutable++;
            metrics?.deadLetters.add(1, { stage: 'router' });
            const error = new UnroutableError(event.type);
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
                payload: encodeEnvelope([event]),
              }),
            );
            return;
          }
          if (span) {
            spans.push(span);
            rewritten = true;
          }
          for (const h of decision.handlers) {
            let list = byHandler.get(h);
            if (!list) byHandler.set(h, (list = []));
            list.push(event);
          }
        });
        for (const [handler, events] of byHandler) {
          counters.routed += events.length;
          metrics?.eventsOut.add(events.length, { stage: 'router', handler });
          // Every event of the envelope, unchanged and in order: forward its bytes instead of encoding them again.
          const body = events.length === env.events.length && !rewritten ? env.data : undefined;
          outs.push({
            subject: Subjects.routed(table.serviceOf(handler), partition, handler),
            msgId: epochMsgId(epoch, `router:${env.seq}:${handler}`),
            events,
            body,
          });
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
