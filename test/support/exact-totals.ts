/**
 * The end of an exactness test: wait until every key's count has reached
 * what was sent, then until nothing more can be counted (every consumer
 * drained), then the totals must equal `expected` exactly. Comparing only
 * once drained is what lets a late double count show.
 */
import { eventually, totalsFor, type Totals } from '@mesh/testing';

export async function expectExactTotalsOnceDrained(
  aggregatorUrl: () => string,
  expected: ReadonlyMap<string, Totals>,
  drained: () => Promise<boolean>,
): Promise<void> {
  await eventually(
    async () => {
      const now = await totalsFor(aggregatorUrl(), expected.keys());
      return [...expected].every(([k, t]) => now[k].count >= t.count);
    },
    120_000,
    500,
  );
  expect(await drained()).toBe(true);
  expect(await totalsFor(aggregatorUrl(), expected.keys())).toEqual(Object.fromEntries(expected));
}
