import { ROOT_CONTEXT, trace, TraceFlags, type SpanContext } from '@opentelemetry/api';
import { headers } from '@nats-io/nats-core';
import { contextFromTraceHeaders, contextFromTraceparent, injectTraceHeaders, injectTraceparent } from './propagation';

const spanContext: SpanContext = {
  traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
  spanId: '00f067aa0ba902b7',
  traceFlags: TraceFlags.SAMPLED,
  isRemote: false,
};

describe('trace context propagation (W3C)', () => {
  it('injects a span context as a traceparent and extracts the same trace id and parent span id', () => {
    const fields = injectTraceparent(trace.setSpanContext(ROOT_CONTEXT, spanContext));
    expect(fields).toEqual({ traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' });

    const extracted = trace.getSpanContext(contextFromTraceparent(fields.traceparent))!;
    expect(extracted.traceId).toBe(spanContext.traceId);
    expect(extracted.spanId).toBe(spanContext.spanId);
    expect(extracted.traceFlags).toBe(TraceFlags.SAMPLED);
    expect(extracted.isRemote).toBe(true);
  });

  it('carries tracestate both ways', () => {
    const ctx = contextFromTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00', 'vendor=abc,other=1');
    expect(trace.getSpanContext(ctx)?.traceFlags).toBe(TraceFlags.NONE);
    expect(injectTraceparent(ctx)).toEqual({
      traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00',
      tracestate: 'vendor=abc,other=1',
    });
  });

  it('gives nothing to inject when the context has no span, so spreading it adds no attributes', () => {
    expect(injectTraceparent(ROOT_CONTEXT)).toEqual({});
  });

  it('falls back to the base context for a missing or malformed traceparent', () => {
    expect(contextFromTraceparent(undefined)).toBe(ROOT_CONTEXT);
    expect(trace.getSpanContext(contextFromTraceparent('not-a-traceparent'))).toBeUndefined();
    expect(trace.getSpanContext(contextFromTraceparent('00-00000000000000000000000000000000-00f067aa0ba902b7-01'))).toBeUndefined();
  });

  it('round-trips through NATS message headers', () => {
    const h = headers();
    injectTraceHeaders(trace.setSpanContext(ROOT_CONTEXT, spanContext), h);
    expect(h.get('traceparent')).toBe('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01');
    expect(h.has('tracestate')).toBe(false);

    const extracted = trace.getSpanContext(contextFromTraceHeaders(h))!;
    expect(extracted.traceId).toBe(spanContext.traceId);
    expect(extracted.spanId).toBe(spanContext.spanId);
    expect(contextFromTraceHeaders(headers())).toBe(ROOT_CONTEXT);
    expect(contextFromTraceHeaders(undefined)).toBe(ROOT_CONTEXT);
  });
});
