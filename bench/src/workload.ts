/**
 * The events the bench sends and the totals they must add up to.
 *
 * Events are `order.created` spread round robin over a fixed set of keys;
 * the n-th event of a key has id `<key>-<n>` (unique in a run, so none is
 * dropped as a duplicate) and a whole-number amount, so the expected count
 * and sum of every key are exact. Keys are only `[A-Za-z0-9_-]`, so a key's
 * aggregate is the KV key `totals.<key>`.
 */
import type { CloudEvent } from '@mesh/contracts';
import { orderEvent } from '@mesh/testing';

export interface Totals {
  count: number;
  sum: number;
}

export interface ProbeEvent {
  key: string;
  /** The event is the key's n-th: the key's count reaches n when it (and those before it) are aggregated. */
  n: number;
}

export class Workload {
  readonly keys: string[];
  /** Keys whose aggregates are watched to time their events. Spread evenly over the key set. */
  readonly probeKeys: ReadonlySet<string>;
  private readonly expected = new Map<string, Totals>();
  private readonly pad: string;
  private cursor = 0;

  constructor(keyCount: number, probeCount: number, eventBytes: number) {
    const width = String(keyCount - 1).length;
    this.keys = Array.from({ length: keyCount }, (_, i) => `k${String(i).padStart(width, '0')}`);
    const every = keyCount / probeCount;
    this.probeKeys = new Set(Array.from({ length: probeCount }, (_, i) => this.keys[Math.floor(i * every)]));
    for (const k of this.keys) this.expected.set(k, { count: 0, sum: 0 });
    this.pad = 'x'.repeat(eventBytes);
  }

  /** The next `count` events (round robin over the keys) and which of them are probes. */
  next(count: number): { events: CloudEvent[]; probes: ProbeEvent[] } {
    const events: CloudEvent[] = [];
    const probes: ProbeEvent[] = [];
    for (let i = 0; i < count; i++) {
      const key = this.keys[this.cursor++ % this.keys.length];
      const totals = this.expected.get(key)!;
      const n = totals.count + 1;
      const amount = (n % 10) + 1;
      totals.count = n;
      totals.sum += amount;
      const event = orderEvent(key, n, amount);
      if (this.pad.length > 0) (event.data as Record<string, unknown>).pad = this.pad;
      events.push(event);
      if (this.probeKeys.has(key)) probes.push({ key, n });
    }
    return { events, probes };
  }

  /** What every key's totals must be once everything sent so far is aggregated. */
  expectedTotals(): ReadonlyMap<string, Readonly<Totals>> {
    return this.expected;
  }

  /** Events sent so far. */
  sent(): number {
    return this.cursor;
  }
}

/** Totals of a key's result as stored in KV and served by GET /v1/aggregates/totals/<key>: the sum over its windows. */
export function totalsOf(result: unknown): Totals {
  const windows = (result as { windows?: { count?: unknown; sum?: unknown }[] } | undefined)?.windows ?? [];
  let count = 0;
  let sum = 0;
  for (const w of windows) {
    if (typeof w.count === 'number') count += w.count;
    if (typeof w.sum === 'number') sum += w.sum;
  }
  return { count, sum };
}
