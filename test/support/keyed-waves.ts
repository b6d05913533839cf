/**
 * Events sent in waves, each key's events in order (one producer per key,
 * its requests one after another), with what the mesh must end up with:
 * every key's exact totals and its sequence numbers 0..n-1 once each, in
 * order, in MESH_PROCESSED.
 */
import { partitionOf, Streams } from '@mesh/contracts';
import { orderEvent, postEvents, readStreamEvents, seqsByKey, totalsFor, type Totals } from '@mesh/testing';
import { waitUntilDrained } from './mesh-state';

export class KeyedWaves {
  private readonly next = new Map<string, number>();
  private readonly expected = new Map<string, Totals>();
  /** Events accepted by ingest so far. */
  sent = 0;

  constructor(readonly keys: readonly string[]) {
    for (const k of keys) this.next.set(k, 0);
  }

  private static amountOf(n: number): number {
    return (n % 17) + 1;
  }

  /** Send `perKey` more events of every key, `perRequest` to a request; `pauseMs` between a key's requests keeps the stream going for a while. */
  async send(ingestUrl: string, perKey: number, perRequest: number, pauseMs = 0): Promise<void> {
    await Promise.all(
      this.keys.map(async (key) => {
        for (let done = 0; done < perKey; done += perRequest) {
          const first = this.next.get(key)!;
          const events = Array.from({ length: Math.min(perRequest, perKey - done) }, (_, i) => orderEvent(key, first + i, KeyedWaves.amountOf(first + i)));
          await postEvents(ingestUrl, events, 'batch', 120_000);
          this.next.set(key, first + events.length);
          const t = this.expected.get(key) ?? { count: 0, sum: 0 };
          for (const e of events) {
            t.count++;
            t.sum += (e.data as { amount: number }).amount;
          }
          this.expected.set(key, t);
          this.sent += events.length;
          if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
        }
      }),
    );
  }

  /**
   * Wait until every partition consumer of the three stages is drained, then
   * check exact totals and per-key order. Returns what differs (empty: all exact).
   */
  async check(
    natsUrl: string,
    aggregatorUrl: string,
    timeoutMs = 90_000,
  ): Promise<{ drained: boolean; totals: Record<string, Totals>; expected: Record<string, Totals>; order: string[] }> {
    const drained = await waitUntilDrained(natsUrl, 16, timeoutMs);
    const totals = await totalsFor(aggregatorUrl, this.keys);
    const seqs = seqsByKey(await readStreamEvents(natsUrl, Streams.processed));
    const order: string[] = [];
    for (const k of this.keys) {
      const want = Array.from({ length: this.next.get(k)! }, (_, n) => n);
      const got = seqs.get(k) ?? [];
      if (got.length !== want.length || got.some((s, i) => s !== want[i])) order.push(`${k}: ${JSON.stringify(got)}`);
    }
    return { drained, totals, expected: Object.fromEntries(this.expected), order };
  }
}

/** `perPartition` keys `<prefix>-<n>` in each of the `partitions` partitions: no partition is left without events. */
export function keysInEveryPartition(prefix: string, partitions: number, perPartition = 1): string[] {
  const keys: string[] = [];
  const count = new Array<number>(partitions).fill(0);
  for (let n = 0; keys.length < partitions * perPartition; n++) {
    const key = `${prefix}-${n}`;
    const p = partitionOf(key, partitions);
    if (count[p] < perPartition) {
      count[p]++;
      keys.push(key);
    }
  }
  return keys;
}

/** The JSON log records of a process's output with one of the messages `msgs`, in order. */
export function logRecords(output: string, ...msgs: string[]): Record<string, unknown>[] {
  return output
    .split('\n')
    .filter((l) => l.startsWith('{') && msgs.some((msg) => l.includes(`"msg":${JSON.stringify(msg)}`)))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}
