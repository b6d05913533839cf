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
  timeoutMs = 120_000,
): Promise<void> {
  let short: string[] = [];
  await eventually(
    async () => {
      const now = await totalsFor(aggregatorUrl(), expected.keys());
      short = [...expected].filter(([k, t]) => now[k].count < t.count).map(([k, t]) => `${k} ${now[k].count}/${t.count}`);
      return short.length === 0;
    },
    timeoutMs,
    500,
    // A test that times out here says which keys fell short, and by how much.
    () => `${short.length} keys short of their count: ${short.slice(0, 10).join(', ')}`,
  );
  expect(await drained()).toBe(true);
  expect(await totalsFor(aggregatorUrl(), expected.keys())).toEqual(Object.fromEntries(expected));
}
