/**
 * Per-event spans that keep one event one trace across the stages. A span
 * is started only for an event whose traceparent says it is sampled, so an
 * unsampled pipeline pays one string check per event. The event's
 * `traceparent` is then moved to the new span, so what the next stage (or a
 * handler's output) does becomes its child.
 */
import type { Span } from '@opentelemetry/api';
import { trace } from '@opentelemetry/api';
import { contextFromTraceparent, injectTraceparent, recordFailure, startConsumerSpan, type MessagingSpanOptions } from '@mesh/telemetry';
import type { CloudEvent } from '@mesh/contracts';

export function isSampled(traceparent: string | undefined): boolean {
  return traceparent !== undefined && traceparent.length === 55 && (parseInt(traceparent.slice(53), 16) & 1) === 1;
}

/** Start the stage's span for an event (if sampled) and make it the event's parent from here on. */
export function startEventSpan(event: CloudEvent, options: Omit<MessagingSpanOptions, 'parent'>): Span | undefined {
  if (!isSampled(event.traceparent)) return undefined;
  const parent = contextFromTraceparent(event.traceparent!, event.tracestate);
  const span = startConsumerSpan({ ...options, operation: options.operation ?? 'process', parent });
  // A stage that does not record (it exports nothing) must not cut the trace
  // for the stages after it: the event keeps its parent.
  if (!span.isRecording()) return undefined;
  const next = injectTraceparent(trace.setSpan(parent, span));
  if (next.traceparent) event.traceparent = next.traceparent;
  return span;
}

export function endEventSpan(span: Span | undefined, error?: unknown): void {
  if (!span) return;
  if (error !== undefined) recordFailure(span, error);
  span.end();
}
