/**
 * The contract suite's input: order events of many keys, interleaved in
 * each request at random (seeded), posted to ingest by a few producers until
 * told to stop. Each key belongs to one producer, whose requests go one
 * after another, so a key's events are accepted in the order of their
 * `data.seq` (0, 1, 2 ...): the order every stage must keep per key.
 */
import type { CloudEvent } from '@mesh/contracts';
import { orderEvent, postEvents, seededRng, type Totals } from '@mesh/testing';

export interface FeedOptions {
  /** Producers (each owns every `producers`-th key). */
  producers: number;
  /** Events in one request. */
  perRequest: number;
  /** Pause between a producer's requests, drawn from [lo, hi] ms. */
  pauseMs: [number, number];
}

export class SeededFeed {
  private readonly next = new Map<string, number>();
  private flowing = false;
  private running: Promise<void> = Promise.resolve();
  private failure: unknown;
  /** Events accepted by ingest so far. */
  sent = 0;

  constructor(
    private readonly ingestUrl: () => string,
    readonly keys: readonly string[],
    private readonly seed: number,
    private readonly label: string,
    private readonly o: FeedOptions,
  ) {
    for (const k of keys) this.next.set(k, 0);
  }

  static amountOf(seq: number): number {
    return (seq % 17) + 1;
  }

  /** Start posting; returns at once. */
  start(): this {
    this.flowing = true;
    this.running = Promise.all(Array.from({ length: this.o.producers }, (_, w) => this.produce(w))).then(
      () => undefined,
      (err: unknown) => {
        this.failure = err;
        this.flowing = false;
      },
    );
    return this;
  }

  private async produce(w: number): Promise<void> {
    const rng = seededRng(this.seed, `${this.label} producer ${w}`);
    const mine = this.keys.filter((_, i) => i % this.o.producers === w);
    while (this.flowing) {
      const events: CloudEvent[] = [];
      for (let i = 0; i < this.o.perRequest; i++) {
        const key = rng.pick(mine);
        const seq = this.next.get(key)!;
        this.next.set(key, seq + 1);
        events.push(orderEvent(key, seq, SeededFeed.amountOf(seq)));
      }
      await postEvents(this.ingestUrl(), events, 'batch', 120_000);
      this.sent += events.length;
      await new Promise((r) => setTimeout(r, rng.between(...this.o.pauseMs)));
    }
  }

  /** Stop after the requests under way; throws what made a producer fail, if one did. */
  async stop(): Promise<void> {
    this.flowing = false;
    await this.running;
    if (this.failure !== undefined) throw this.failure;
  }

  /** Resolves once `more` events beyond those sent now are accepted; throws what made a producer fail, if one did. */
  async flowFor(more: number, timeoutMs = 120_000): Promise<void> {
    const from = this.sent;
    const deadline = Date.now() + timeoutMs;
    while (this.sent < from + more) {
      if (this.failure !== undefined) throw this.failure;
      if (!this.flowing) throw new Error('the feed was stopped');
      if (Date.now() > deadline) throw new Error(`ingest accepted ${this.sent - from} of ${more} more events within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Events sent of `key` (its seqs are 0 .. count-1). */
  count(key: string): number {
    return this.next.get(key) ?? 0;
  }

  /** What the totals aggregation must hold per key once everything is counted. */
  expectedTotals(): Record<string, Totals> {
    return Object.fromEntries(
      this.keys.map((k) => {
        let sum = 0;
        for (let seq = 0; seq < this.count(k); seq++) sum += SeededFeed.amountOf(seq);
        return [k, { count: this.count(k), sum }];
      }),
    );
  }
}
