/**
 * Producer and consumer spans following the OpenTelemetry messaging semantic
 * conventions, and the one way to mark a span failed.
 *
 * Cheap by design: attributes and links are only built when the span is
 * recording (the sampler said yes), so an unsampled event costs one
 * non-recording span object and nothing else.
 */
import {
  context,
  isSpanContextValid,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Link,
  type Span,
  type Tracer,
  type TracerProvider,
} from '@opentelemetry/api';
import {
  ATTR_MESSAGING_BATCH_MESSAGE_COUNT,
  ATTR_MESSAGING_CONSUMER_GROUP_NAME,
  ATTR_MESSAGING_DESTINATION_NAME,
  ATTR_MESSAGING_DESTINATION_PARTITION_ID,
  ATTR_MESSAGING_MESSAGE_ID,
  ATTR_MESSAGING_OPERATION,
  ATTR_MESSAGING_OPERATION_NAME,
  ATTR_MESSAGING_OPERATION_TYPE,
  ATTR_MESSAGING_SYSTEM,
} from './semconv';
import type { MessagingOperation, MessagingSpanOptions } from './types';

export const TracerName = '@mesh/telemetry';

// The tracer is looked up again when the global provider changes (telemetry
// restarted, a test installing its own provider); otherwise it is reused.
let cachedProvider: TracerProvider | undefined;
let cachedTracer: Tracer | undefined;
function tracer(): Tracer {
  const provider = trace.getTracerProvider();
  if (provider !== cachedProvider || !cachedTracer) {
    cachedProvider = provider;
    cachedTracer = provider.getTracer(TracerName);
  }
  return cachedTracer;
}

/**
 * The current conventions replaced the `publish` operation type with `send`;
 * `messaging.operation` keeps the older value for back ends that read it.
 */
const OperationType: Record<MessagingOperation, string> = { process: 'process', receive: 'receive', publish: 'send' };

function startMessagingSpan(kind: SpanKind, operation: MessagingOperation, options: MessagingSpanOptions): Span {
  const parent = options.parent ?? context.active();
  const span = tracer().startSpan(`${operation} ${options.destination}`, { kind }, parent);
  if (!span.isRecording()) return span;

  const attributes: Attributes = {
    [ATTR_MESSAGING_SYSTEM]: options.system ?? 'nats',
    [ATTR_MESSAGING_DESTINATION_NAME]: options.destination,
    [ATTR_MESSAGING_OPERATION]: operation,
    [ATTR_MESSAGING_OPERATION_TYPE]: OperationType[operation],
    [ATTR_MESSAGING_OPERATION_NAME]: operation,
  };
  if (options.messageId !== undefined) attributes[ATTR_MESSAGING_MESSAGE_ID] = options.messageId;
  if (options.partition !== undefined) attributes[ATTR_MESSAGING_DESTINATION_PARTITION_ID] = String(options.partition);
  if (options.batchSize !== undefined) attributes[ATTR_MESSAGING_BATCH_MESSAGE_COUNT] = options.batchSize;
  if (options.consumerGroup !== undefined) attributes[ATTR_MESSAGING_CONSUMER_GROUP_NAME] = options.consumerGroup;
  span.setAttributes(attributes);

  if (options.links?.length) {
    const links: Link[] = [];
    for (const ctx of options.links) {
      const sc = trace.getSpanContext(ctx);
      if (sc && isSpanContextValid(sc)) links.push({ context: sc });
    }
    if (links.length) span.addLinks(links);
  }
  return span;
}

/**
 * A CONSUMER span for taking an event (or a batch: give batchSize and links)
 * off a subject. Operation default 'process'. Not made active: run the work
 * inside `context.with(trace.setSpan(parent, span), ...)` when code below it
 * should see it, and end it yourself.
 */
export function startConsumerSpan(options: MessagingSpanOptions): Span {
  return startMessagingSpan(SpanKind.CONSUMER, options.operation ?? 'process', options);
}

/**
 * A PRODUCER span for publishing an event or an envelope. Operation default
 * 'publish'. Inject its context into what is published
 * (injectTraceparent(trace.setSpan(parent, span))) so the consumer continues
 * the trace.
 */
export function startProducerSpan(options: MessagingSpanOptions): Span {
  return startMessagingSpan(SpanKind.PRODUCER, options.operation ?? 'publish', options);
}

/** Marks `span` failed: status ERROR with the error's message, and the exception recorded as a span event. Does not end it. */
export function recordFailure(span: Span, err: unknown): void {
  if (!span.isRecording()) return;
  const error = err instanceof Error ? err : new Error(String(err));
  span.recordException(error);
  span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
}
