/**
 * The default aggregation: per partition key, per one-minute tumbling
 * window of event time, how many events and the sum of `data.amount`
 * (events without a numeric amount count but add nothing).
 */
import { defineAggregation } from '@mesh/runtime';

export default defineAggregation({
  name: 'totals',
  window: { kind: 'tumbling', sizeMs: 60_000 },
  init: () => ({ count: 0, sum: 0 }),
  add(acc, event) {
    acc.count += 1;
    const amount = (event.data as { amount?: unknown } | undefined)?.amount;
    if (typeof amount === 'number' && Number.isFinite(amount)) acc.sum += amount;
    return acc;
  },
});
