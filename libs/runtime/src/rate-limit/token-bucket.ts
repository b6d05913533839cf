/**
 * A token bucket: `rate` tokens a second, holding at most `capacity` (the
 * burst). Taking is all or nothing, so a refused request costs nothing.
 * Time is passed in (milliseconds), so tests need no clock.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    readonly rate: number,
    readonly capacity: number,
    now: number,
  ) {
    if (!(rate > 0) || !(capacity > 0)) throw new Error(`a token bucket needs a rate and a capacity above zero, got rate ${rate}, capacity ${capacity}`);
    this.tokens = capacity;
    this.last = now;
  }

  private refill(now: number): void {
    if (now > this.last) {
      this.tokens = Math.min(this.capacity, this.tokens + ((now - this.last) / 1000) * this.rate);
      this.last = now;
    }
  }

  /** Tokens there now. */
  available(now: number): number {
    this.refill(now);
    return this.tokens;
  }

  /** Take `n` tokens if all are there; false (and nothing taken) otherwise. */
  tryTake(n: number, now: number): boolean {
    this.refill(now);
    if (n > this.tokens) return false;
    this.tokens -= n;
    return true;
  }

  /** Milliseconds until `n` tokens are there (0: now; Infinity: more than the bucket holds). */
  msUntil(n: number, now: number): number {
    this.refill(now);
    if (n > this.capacity) return Infinity;
    return n <= this.tokens ? 0 : ((n - this.tokens) / this.rate) * 1000;
  }

  /** Milliseconds until the bucket is full again. */
  msUntilFull(now: number): number {
    return this.msUntil(this.capacity, now);
  }

  /** A full bucket is the same as a new one: it can be forgotten. */
  isFull(now: number): boolean {
    return this.available(now) >= this.capacity;
  }
}
