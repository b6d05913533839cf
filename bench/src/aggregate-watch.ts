/**
 * Seeing events arrive in their aggregates.
 *
 * - ProbeWatch times events: it watches the KV entries `totals.<key>` of the
 *   probe keys in bucket mesh_aggregates and, when a key's count reaches n,
 *   takes the key's n-th event as visible from the moment the server stored
 *   that entry (its stream timestamp: from then on GET returns it), so the
 *   bench's own delay in receiving the update does not count; that delay is
 *   recorded separately. A key's events are aggregated in
 *   order, so the count reaching n means events 1..n are all in. (Two
 *   requests in flight with events of the same key may be stored in either
 *   order; then two neighbouring samples swap, the distribution does not
 *   change.)
 * - waitForExactTotals watches every key and resolves when each one's count
 *   and sum equal what was sent: the moment the step's events are all
 *   visible.
 * - verifyTotals reads every key through GET /v1/aggregates/totals/<key>,
 *   what a user sees, and lists the keys whose totals are not exact.
 */
import { performance } from 'node:perf_hooks';
import { KvWatchInclude, type KV, type KvWatchEntry } from '@nats-io/kv';
import type { QueuedIterator } from '@nats-io/nats-core';
import { aggregateKvKey } from '@mesh/contracts';
import { totalsOf, type ProbeEvent, type Totals } from './workload';

const Aggregation = 'totals';

interface Pending {
  at: number;
  step: string;
}

export class ProbeWatch {
  private readonly watchers: QueuedIterator<KvWatchEntry>[] = [];
  private readonly pending = new Map<string, Map<number, Pending>>();
  private readonly seen = new Map<string, number>();
  private readonly samples = new Map<string, number[]>();
  private readonly observed = new Map<string, number[]>();

  private constructor(private readonly kv: KV) {}

  static async start(kv: KV, probeKeys: Iterable<string>): Promise<ProbeWatch> {
    const w = new ProbeWatch(kv);
    // One watcher per key: nats-server 2.9 takes one filter subject per consumer.
    for (const key of probeKeys) await w.watch(key);
    return w;
  }

  private async watch(key: string): Promise<void> {
    this.pending.set(key, new Map());
    this.seen.set(key, 0);
    const it = await this.kv.watch({ key: aggregateKvKey(Aggregation, key), include: KvWatchInclude.UpdatesOnly, ignoreDeletes: true });
    this.watchers.push(it);
    void (async () => {
      for await (const e of it) {
        if (e.operation !== 'PUT' || e.length === 0) continue;
        // Both in performance.now() time: the server's store timestamp (ms) and when the update got here.
        this.onCount(key, totalsOf(e.json()).count, e.created.getTime() - performance.timeOrigin, performance.now());
      }
    })();
  }

  private onCount(key: string, count: number, storedAt: number, now: number): void {
    const seen = this.seen.get(key)!;
    if (count <= seen) return;
    const pending = this.pending.get(key)!;
    for (let n = seen + 1; n <= count; n++) {
      const p = pending.get(n);
      if (!p) continue;
      pending.delete(n);
      push(this.samples, p.step, Math.max(0, storedAt - p.at));
      push(this.observed, p.step, now - p.at);
    }
    this.seen.set(key, count);
  }

  /** Probe events of a request about to be sent, timed from `at` (performance.now()). */
  noteSent(probes: readonly ProbeEvent[], at: number, step: string): void {
    for (const { key, n } of probes) this.pending.get(key)?.set(n, { at, step });
  }

  /** Latencies (ms) of the probe events of one step seen so far: post → stored in KV. */
  samplesOf(step: string): number[] {
    return this.samples.get(step) ?? [];
  }

  /** The same events, post → the update reached the bench. */
  observedOf(step: string): number[] {
    return this.observed.get(step) ?? [];
  }

  /** Probe events not yet seen in their aggregate. */
  unseen(): number {
    let n = 0;
    for (const p of this.pending.values()) n += p.size;
    return n;
  }

  stop(): void {
    for (const w of this.watchers) w.stop();
  }
}

function push(m: Map<string, number[]>, k: string, v: number): void {
  let list = m.get(k);
  if (!list) m.set(k, (list = []));
  list.push(v);
}

export interface ExactTotals {
  /** performance.now() when the last key became exact; undefined if some never did in time. */
  doneAt?: number;
  /** Keys still not exact at the end. */
  outstanding: string[];
}

/**
 * Resolves when every key's aggregate equals its expected totals, or after
 * `timeoutMs` with the keys that are still off.
 */
export async function waitForExactTotals(kv: KV, expected: ReadonlyMap<string, Readonly<Totals>>, timeoutMs: number): Promise<ExactTotals> {
  const prefix = `${Aggregation}.`;
  const outstanding = new Set(expected.keys());
  // Last value of every key first, then updates as they are stored.
  const it = await kv.watch({ key: `${prefix}>`, ignoreDeletes: true });
  const timer = setTimeout(() => it.stop(), timeoutMs);
  let doneAt: number | undefined;
  try {
    for await (const e of it) {
      if (e.operation !== 'PUT' || e.length === 0) continue;
      // Bench keys are plain [A-Za-z0-9_-], so the KV token is the key itself.
      const key = e.key.slice(prefix.length);
      const want = expected.get(key);
      if (!want) continue;
      const got = totalsOf(e.json());
      if (got.count === want.count && got.sum === want.sum) outstanding.delete(key);
      else outstanding.add(key);
      if (outstanding.size === 0) {
        doneAt = performance.now();
        break;
      }
    }
  } finally {
    clearTimeout(timer);
    it.stop();
  }
  return { doneAt, outstanding: [...outstanding] };
}

export interface Mismatch {
  key: string;
  expected: Totals;
  got: Totals | string;
}

/** Every key's totals through the aggregator's HTTP API; returns the keys that are not exact. */
export async function verifyTotals(aggregatorUrl: string, expected: ReadonlyMap<string, Readonly<Totals>>, concurrency = 8): Promise<Mismatch[]> {
  const keys = [...expected.keys()];
  const mismatches: Mismatch[] = [];
  let next = 0;
  const worker = async () => {
    while (next < keys.length) {
      const key = keys[next++];
      const want = expected.get(key)!;
      try {
        const res = await fetch(`${aggregatorUrl}/v1/aggregates/${Aggregation}/${encodeURIComponent(key)}`);
        if (res.status !== 200) {
          mismatches.push({ key, expected: { ...want }, got: `HTTP ${res.status}: ${(await res.text()).slice(0, 200)}` });
          continue;
        }
        const got = totalsOf(await res.json());
        if (got.count !== want.count || got.sum !== want.sum) mismatches.push({ key, expected: { ...want }, got });
      } catch (err) {
        mismatches.push({ key, expected: { ...want }, got: `GET failed: ${(err as Error).message}` });
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return mismatches.sort((a, b) => a.key.localeCompare(b.key));
}
