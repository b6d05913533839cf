/** Trace and span ids of the active context, for log lines. */
import { context, isSpanContextValid, trace, type Context } from '@opentelemetry/api';
import type { TraceIds } from './types';

/**
 * `{ trace_id, span_id }` of the span active in `ctx` (default: the active
 * context), or `{}` when there is none, so a logger can spread it into every
 * line: `log.info('routed', { ...activeTraceIds() })`.
 */
export function activeTraceIds(ctx: Context = context.active()): TraceIds {
  const sc = trace.getSpanContext(ctx);
  if (!sc || !isSpanContextValid(sc)) return {};
  return { trace_id: sc.traceId, span_id: sc.spanId };
}
