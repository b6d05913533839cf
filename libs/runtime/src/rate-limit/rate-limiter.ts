/**
 * Rate limits per client (an API key, or an address while keys are off):
 * one token bucket on events a second and one on bytes a second, each off
 * at 0. A request takes from both or from neither. Every decision carries
 * the RateLimit header fields of the IETF draft (RateLimit-Limit,
 * -Remaining, -Reset, -Policy) for the bucket that decided, and a refusal
 * `Retry-After`.
 */
import { TokenBucket } from './token-bucket';

export interface RateLimitOptions {
  /** Events a second; 0: no limit. */
  eventsPerSecond: number;
  /** Bytes a second; 0: no limit. */
  bytesPerSecond: number;
  /** How long a rate's worth the bucket holds (burst), in ms. */
  burstMs: number;
  now?: () => number;
}

export interface RateDecision {
  ok: boolean;
  /** Which limit refused (or, when ok, is reported in the headers). */
  limit?: 'events' | 'bytes';
  /** Why, for the 429 body. */
  reason?: string;
  headers: Record<string, string>;
}

type Unit = 'events' | 'bytes';

interface Buckets {
  events?: TokenBucket;
  bytes?: TokenBucket;
}

/** Clients whose buckets refilled are forgotten after this long, so addresses seen once do not pile up. */
const SweepEveryMs = 30_000;

export class RateLimiter {
  private readonly clients = new Map<string, Buckets>();
  private readonly now: () => number;
  private lastSweep: number;

  constructor(private readonly o: RateLimitOptions) {
    this.now = o.now ?? (() => performance.now());
    this.lastSweep = this.now();
  }

  get enabled(): boolean {
    return this.o.eventsPerSecond > 0 || this.o.bytesPerSecond > 0;
  }

  /** Could `client` send `events` and `bytes` now? Takes nothing (checked before a body is read). */
  check(client: string, events: number, bytes: number): RateDecision {
    return this.decide(client, events, bytes, false);
  }

  /** Take `events` and `bytes` from `client`'s buckets, all or nothing. */
  take(client: string, events: number, bytes: number): RateDecision {
    return this.decide(client, events, bytes, true);
  }

  private decide(client: string, events: number, bytes: number, take: boolean): RateDecision {
    if (!this.enabled) return { ok: true, headers: {} };
    const now = this.now();
    this.sweep(now);
    const b = this.bucketsOf(client, now);
    const wants: [Unit, TokenBucket | undefined, number][] = [
      ['events', b.events, events],
      ['bytes', b.bytes, bytes],
    ];
    for (const [unit, bucket, n] of wants) {
      if (!bucket || n <= bucket.available(now)) continue;
      const wait = bucket.msUntil(n, now);
      const reason = Number.isFinite(wait)
        ? `rate limit of ${this.rateOf(unit)} ${unit}/s reached; retry after the Retry-After seconds`
        : `the request holds ${n} ${unit}, more than the ${bucket.capacity} a client may send at once (rate limit ${this.rateOf(unit)} ${unit}/s); split it into smaller requests`;
      const retryAfter = Number.isFinite(wait) ? Math.max(1, Math.ceil(wait / 1000)) : Math.max(1, Math.ceil(bucket.msUntilFull(now) / 1000));
      return { ok: false, limit: unit, reason, headers: { 'retry-after': String(retryAfter), ...this.fields(bucket, now) } };
    }
    if (take) for (const [, bucket, n] of wants) bucket?.tryTake(n, now);
    const shown: Unit = b.events ? 'events' : 'bytes';
    return { ok: true, limit: shown, headers: this.fields(b[shown]!, now) };
  }

  private rateOf(unit: Unit): number {
    return unit === 'events' ? this.o.eventsPerSecond : this.o.bytesPerSecond;
  }

  private fields(bucket: TokenBucket, now: number): Record<string, string> {
    return {
      'ratelimit-limit': String(Math.floor(bucket.capacity)),
      'ratelimit-remaining': String(Math.max(0, Math.floor(bucket.available(now)))),
      'ratelimit-reset': String(Math.ceil(bucket.msUntilFull(now) / 1000)),
      'ratelimit-policy': `${Math.floor(bucket.capacity)};w=${Math.max(1, Math.round(this.o.burstMs / 1000))}`,
    };
  }

  private bucketsOf(client: string, now: number): Buckets {
    let b = this.clients.get(client);
    if (!b) {
      const burst = this.o.burstMs / 1000;
      b = {
        events: this.o.eventsPerSecond > 0 ? new TokenBucket(this.o.eventsPerSecond, Math.max(1, this.o.eventsPerSecond * burst), now) : undefined,
        bytes: this.o.bytesPerSecond > 0 ? new TokenBucket(this.o.bytesPerSecond, Math.max(1, this.o.bytesPerSecond * burst), now) : undefined,
      };
      this.clients.set(client, b);
    }
    return b;
  }

  private sweep(now: number): void {
    if (now - this.lastSweep < SweepEveryMs) return;
    this.lastSweep = now;
    for (const [client, b] of this.clients) {
      if ((!b.events || b.events.isFull(now)) && (!b.bytes || b.bytes.isFull(now))) this.clients.delete(client);
    }
  }

  /** Clients with buckets kept (for tests and metrics). */
  get size(): number {
    return this.clients.size;
  }
}
