/**
 * The one entry both HTTP and NATS requests go through: parse, validate,
 * pack, store. Answers 202 only after JetStream has stored every envelope;
 * a request with any invalid event stores nothing.
 */
import type { JetStreamClient } from '@nats-io/jetstream';
import { context, SpanKind, trace, type Context, type Span } from '@opentelemetry/api';
import { partitionOf, partitionKeyOf, Subjects, type CloudEvent } from '@mesh/contracts';
import { errorMessage, type Logger } from '@mesh/runtime';
import { injectTraceparent, recordFailure, startProducerSpan, TracerName, type MetricsRegistry } from '@mesh/telemetry';
import type { EnvelopeBatcher } from './envelope-batcher';
import { parseRequest } from './parse-request';
import { prepareEvents } from './prepare-events';

export interface AcceptAnswer {
  status: number;
  body: Record<string, unknown>;
  headers?: Record<string, string>;
}

export interface AcceptDeps {
  js: JetStreamClient;
  /** Packs the events of concurrent requests into shared envelopes and stores them. */
  batcher: EnvelopeBatcher;
  partitions: number;
  maxEvents: number;
  maxBytes: number;
  log: Logger;
  isConnected(): boolean;
  /** Largest message the server takes (its max_payload). */
  maxPayload(): number;
  metrics?: MetricsRegistry;
}

/** Room left in a message for the envelope's brackets and headers. */
const ENVELOPE_OVERHEAD = 1024;

const RETRY_AFTER_S = '1';

/**
 * The last word before events are stored, once they are known to be valid:
 * an answer refuses the whole request (permissions, rate limits, the
 * in-flight bound); undefined lets it through.
 */
export type Admit = (events: readonly CloudEvent[]) => AcceptAnswer | undefined;

/**
 * Parse, validate and store one request. `parent` is the caller's trace
 * context (from a `traceparent` header); the request gets a server span, each
 * envelope a producer span, and each event without a `traceparent` of its own
 * the producer span's, so it is one trace from here to its aggregate.
 */
export async function accept(
  deps: AcceptDeps,
  contentType: string | undefined,
  body: Uint8Array,
  defaultType?: string,
  parent: Context = context.active(),
  admit?: Admit,
): Promise<AcceptAnswer> {
  const started = performance.now();
  const span = trace.getTracer(TracerName).startSpan('POST /v1/events', { kind: SpanKind.SERVER }, parent);
  const answer = await store(deps, contentType, body, defaultType, trace.setSpan(parent, span), span, admit);
  span.setAttribute('http.response.status_code', answer.status);
  span.end();
  deps.metrics?.ingestRequests.add(1, { status: answer.status });
  // Events stored (a duplicate of one stored before counts: JetStream holds it once).
  if (answer.status === 202) deps.metrics?.eventsOut.add(Number(answer.body.accepted), { stage: 'ingest' });
  deps.metrics?.ingestRequestDuration.record((performance.now() - started) / 1000, {});
  return answer;
}

async function store(
  deps: AcceptDeps,
  contentType: string | undefined,
  body: Uint8Array,
  defaultType: string | undefined,
  ctx: Context,
  span: Span,
  admit: Admit | undefined,
): Promise<AcceptAnswer> {
  const parsed = parseRequest(contentType, body);
  if (!parsed.ok) return { status: parsed.status, body: { error: parsed.error, ...(parsed.problems ? { problems: parsed.problems } : {}) } };

  const maxEventBytes = deps.maxPayload() - ENVELOPE_OVERHEAD;
  // One producer span for the request's events: envelopes mix events of
  // concurrent requests, so they cannot each have a parent of their own.
  // Started once the events are valid and before they are serialized, so
  // its traceparent is part of the JSON that is stored.
  let producer: Span | undefined;
  const prepared = prepareEvents(parsed.candidates, {
    partitions: deps.partitions,
    maxEvents: deps.maxEvents,
    maxBytes: deps.maxBytes,
    now: new Date(),
    defaultType,
    maxEventBytes,
    pack: false,
    // parseRequest's objects are ours.
    inPlace: true,
    stamp: (events) => {
      if (!deps.isConnected()) return;
      span.setAttribute('messaging.batch.message_count', events.length);
      const first = events[0];
      const partition = partitionOf(partitionKeyOf(first), deps.partitions);
      producer = startProducerSpan({
        destination: Subjects.ingest(partition, first.type),
        partition,
        messageId: first.id,
        batchSize: events.length,
        parent: ctx,
      });
      const { traceparent } = injectTraceparent(trace.setSpan(ctx, producer));
      if (traceparent) for (const e of events) e.traceparent ??= traceparent;
    },
  });
  if (!prepared.ok) {
    producer?.end();
    const error = `${prepared.problems.length} problem(s) in the request; nothing was stored`;
    if (prepared.tooLarge) return { status: 413, body: { error, problems: prepared.problems, limit: maxEventBytes } };
    return { status: 400, body: { error, problems: prepared.problems } };
  }
  const refused = admit?.(prepared.events);
  if (refused) {
    producer?.end();
    return refused;
  }
  if (!producer) {
    return { status: 503, body: { error: 'not connected to NATS; nothing was stored, retry later' }, headers: { 'retry-after': RETRY_AFTER_S } };
  }
  try {
    await deps.batcher.submit(prepared.events, prepared.sizes, prepared.json);
  } catch (err) {
    recordFailure(producer, err);
    deps.log.warn('could not store events', { error: err, events: prepared.events.length });
    // Some envelopes may be stored: a retry with the same events is deduplicated.
    return {
      status: 503,
      body: { error: `JetStream could not store the events (${errorMessage(err)}); retry the same request` },
      headers: { 'retry-after': RETRY_AFTER_S },
    };
  } finally {
    producer.end();
  }
  return { status: 202, body: { accepted: prepared.events.length, ids: prepared.events.map((e) => e.id) } };
}
