/**
 * Rates from cumulative counters that live in processes which come and go.
 * Each instance reports its own totals; the rate of a stage is the sum of
 * its instances' increases over the time between two readings. An instance
 * seen for the first time contributes nothing yet (its total is history, not
 * a burst), one that restarted (total went down) counts from zero, and one
 * that is gone simply stops contributing: a killed instance never shows up
 * as a negative rate.
 */
export class CounterRates {
  private readonly last = new Map<string, { value: number; at: number }>();

  /**
   * Record `value` for `series` (e.g. `router/instance-1/in`) read at `at`
   * (ms) and return its increase per second since the previous reading, or
   * undefined for the first one.
   */
  observe(series: string, value: number, at: number): number | undefined {
    const prev = this.last.get(series);
    this.last.set(series, { value, at });
    if (!prev || at <= prev.at) return undefined;
    const increase = value >= prev.value ? value - prev.value : value;
    return (increase * 1000) / (at - prev.at);
  }

  /** Forget series not observed since `before` (instances gone). */
  prune(before: number): void {
    for (const [k, v] of this.last) if (v.at < before) this.last.delete(k);
  }
}

/**
 * A short moving average, so a rate read every second does not jump with
 * the batching of the stages (an envelope of 200 events lands in one second
 * or the next).
 */
export class Smoothed {
  private readonly samples = new Map<string, number[]>();
  constructor(private readonly window: number) {}

  add(key: string, value: number): number {
    const list = this.samples.get(key) ?? [];
    list.push(value);
    if (list.length > this.window) list.shift();
    this.samples.set(key, list);
    return list.reduce((a, b) => a + b, 0) / list.length;
  }
}
