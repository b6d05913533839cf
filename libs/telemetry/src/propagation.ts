/**
 * W3C Trace Context in and out of events and NATS headers.
 *
 * The W3C propagator is used directly instead of the global one: an event's
 * `traceparent` attribute is W3C by definition (CloudEvents distributed
 * tracing extension), whatever OTEL_PROPAGATORS says, and these helpers work
 * before (or without) startTelemetry.
 */
import { defaultTextMapGetter, defaultTextMapSetter, ROOT_CONTEXT, type Context } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import type { TraceContextFields, TraceHeaderCarrier } from './types';

const w3c = new W3CTraceContextPropagator();

/** `traceparent` and `tracestate` of the span in `ctx`; neither when it holds no valid span. */
export function injectTraceparent(ctx: Context): TraceContextFields {
  const carrier: Record<string, string> = {};
  w3c.inject(ctx, carrier, defaultTextMapSetter);
  const out: TraceContextFields = {};
  if (carrier.traceparent) out.traceparent = carrier.traceparent;
  if (carrier.tracestate) out.tracestate = carrier.tracestate;
  return out;
}

/**
 * A context whose parent is the remote span `traceparent` names, on top of
 * `base` (default: the root context, so an event never inherits whatever
 * happens to be active). A missing or malformed traceparent gives `base`
 * unchanged: the next span starts a new trace.
 */
export function contextFromTraceparent(traceparent: string | undefined, tracestate?: string, base: Context = ROOT_CONTEXT): Context {
  if (!traceparent) return base;
  const carrier: Record<string, string> = { traceparent };
  if (tracestate) carrier.tracestate = tracestate;
  return w3c.extract(base, carrier, defaultTextMapGetter);
}

/** Writes `traceparent` (and `tracestate`) of `ctx` into NATS headers; writes nothing when `ctx` holds no valid span. */
export function injectTraceHeaders(ctx: Context, headers: TraceHeaderCarrier): void {
  const { traceparent, tracestate } = injectTraceparent(ctx);
  if (traceparent) headers.set('traceparent', traceparent);
  if (tracestate) headers.set('tracestate', tracestate);
}

/** The context carried by NATS headers (see contextFromTraceparent); `base` when they carry none. */
export function contextFromTraceHeaders(headers: TraceHeaderCarrier | undefined, base: Context = ROOT_CONTEXT): Context {
  if (!headers) return base;
  return contextFromTraceparent(headers.get('traceparent') || undefined, headers.get('tracestate') || undefined, base);
}
