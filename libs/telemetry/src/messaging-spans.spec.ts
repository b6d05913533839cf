import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, TraceFlags } from '@opentelemetry/api';
import { AlwaysOffSampler, InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { recordFailure, startConsumerSpan, startProducerSpan } from './messaging-spans';
import { contextFromTraceparent, injectTraceparent } from './propagation';

const exporter = new InMemorySpanExporter();
const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });

beforeAll(() => trace.setGlobalTracerProvider(provider));
afterEach(() => exporter.reset());
afterAll(async () => {
  await provider.shutdown();
  trace.disable();
});

const incoming = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

describe('messaging spans', () => {
  it('makes a CONSUMER span that continues the event trace and carries the messaging attributes', () => {
    const span = startConsumerSpan({
      destination: 'mesh.routed.3.orders',
      operation: 'process',
      messageId: 'order-1',
      partition: 3,
      batchSize: 12,
      consumerGroup: 'processor-p03',
      parent: contextFromTraceparent(incoming),
    });
    span.end();

    const [finished] = exporter.getFinishedSpans();
    expect(finished.name).toBe('process mesh.routed.3.orders');
    expect(finished.kind).toBe(SpanKind.CONSUMER);
    expect(finished.spanContext().traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    expect(finished.parentSpanContext?.spanId).toBe('00f067aa0ba902b7');
    expect(finished.attributes).toEqual({
      'messaging.system': 'nats',
      'messaging.destination.name': 'mesh.routed.3.orders',
      'messaging.operation': 'process',
      'messaging.operation.type': 'process',
      'messaging.operation.name': 'process',
      'messaging.message.id': 'order-1',
      'messaging.destination.partition.id': '3',
      'messaging.batch.message_count': 12,
      'messaging.consumer.group.name': 'processor-p03',
    });
  });

  it("makes a PRODUCER span whose context, injected into the published event, is the consumer's parent", () => {
    const span = startProducerSpan({
      destination: 'mesh.ingest.7.order.created',
      messageId: 'ingest:abc',
      partition: 7,
      parent: contextFromTraceparent(incoming),
    });
    const published = injectTraceparent(trace.setSpan(ROOT_CONTEXT, span));
    span.end();

    const [finished] = exporter.getFinishedSpans();
    expect(finished.name).toBe('publish mesh.ingest.7.order.created');
    expect(finished.kind).toBe(SpanKind.PRODUCER);
    expect(finished.attributes['messaging.operation']).toBe('publish');
    expect(finished.attributes['messaging.operation.type']).toBe('send');
    expect(finished.attributes['messaging.destination.partition.id']).toBe('7');
    expect(finished.attributes['messaging.message.id']).toBe('ingest:abc');
    expect(finished.attributes['messaging.batch.message_count']).toBeUndefined();

    const next = trace.getSpanContext(contextFromTraceparent(published.traceparent))!;
    expect(next.traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    expect(next.spanId).toBe(finished.spanContext().spanId);
  });

  it('links a batch span to the traces of the events in it, skipping events without one', () => {
    const a = contextFromTraceparent('00-11111111111111111111111111111111-1111111111111111-01');
    const b = contextFromTraceparent('00-22222222222222222222222222222222-2222222222222222-01');
    startConsumerSpan({ destination: 'mesh.ingest.1.>', operation: 'receive', batchSize: 3, links: [a, b, ROOT_CONTEXT], parent: ROOT_CONTEXT }).end();

    const [finished] = exporter.getFinishedSpans();
    expect(finished.name).toBe('receive mesh.ingest.1.>');
    expect(finished.parentSpanContext).toBeUndefined();
    expect(finished.links.map((l) => l.context.traceId)).toEqual(['11111111111111111111111111111111', '22222222222222222222222222222222']);
  });

  it('records a failure as status ERROR with the exception as a span event', () => {
    const span = startConsumerSpan({ destination: 'mesh.routed.0.orders', parent: ROOT_CONTEXT });
    recordFailure(span, new TypeError('amount must be a number'));
    recordFailure(span, 'plain string thrown');
    span.end();

    const [finished] = exporter.getFinishedSpans();
    expect(finished.status).toEqual({ code: SpanStatusCode.ERROR, message: 'plain string thrown' });
    expect(finished.events.map((e) => e.attributes?.['exception.message'])).toEqual(['amount must be a number', 'plain string thrown']);
    expect(finished.events[0].attributes?.['exception.type']).toBe('TypeError');
  });

  it('sets nothing on a span the sampler dropped, and still passes the trace on', () => {
    const dropping = new TracerProvider({ sampler: new AlwaysOffSampler(), spanProcessors: [new SimpleSpanProcessor({ exporter })] });
    trace.disable();
    trace.setGlobalTracerProvider(dropping);
    try {
      const span = startConsumerSpan({ destination: 'mesh.routed.0.orders', messageId: 'x', parent: contextFromTraceparent(incoming) });
      expect(span.isRecording()).toBe(false);
      recordFailure(span, new Error('ignored'));
      span.end();
      expect(exporter.getFinishedSpans()).toEqual([]);
      expect(span.spanContext().traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
      expect(span.spanContext().traceFlags).toBe(TraceFlags.NONE);
    } finally {
      trace.disable();
      trace.setGlobalTracerProvider(provider);
    }
  });
});
