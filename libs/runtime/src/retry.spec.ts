import { backoffDelay, defaultRetryPolicy, type RetryPolicy } from './retry';

const exact: RetryPolicy = { maxAttempts: 10, initialDelayMs: 100, maxDelayMs: 5000, multiplier: 2, jitter: 0 };

describe('backoffDelay', () => {
  it('starts at the initial delay after the first failed attempt', () => {
    expect(backoffDelay(exact, 1)).toBe(100);
  });

  it('multiplies the delay by the multiplier after each further failure', () => {
    expect([1, 2, 3, 4, 5].map((a) => backoffDelay(exact, a))).toEqual([100, 200, 400, 800, 1600]);
    expect([1, 2, 3].map((a) => backoffDelay({ ...exact, multiplier: 3 }, a))).toEqual([100, 300, 900]);
  });

  it('never waits longer than maxDelayMs without jitter', () => {
    expect(backoffDelay(exact, 6)).toBe(3200);
    expect(backoffDelay(exact, 7)).toBe(5000);
    expect(backoffDelay(exact, 50)).toBe(5000);
  });

  it('spreads a delay by the jitter fraction either side, by the random number drawn', () => {
    const jittered = { ...exact, jitter: 0.2 };
    // attempt 4: base 800, spread 160
    expect(backoffDelay(jittered, 4, () => 0)).toBe(640);
    expect(backoffDelay(jittered, 4, () => 0.5)).toBe(800);
    expect(backoffDelay(jittered, 4, () => 0.999999)).toBe(960);
    expect(backoffDelay(jittered, 4, () => 0.25)).toBe(720);
  });

  it('ignores the random number when jitter is 0', () => {
    expect(backoffDelay(exact, 3, () => 0)).toBe(400);
    expect(backoffDelay(exact, 3, () => 0.99)).toBe(400);
  });

  it('gives whole milliseconds', () => {
    expect(Number.isInteger(backoffDelay({ ...exact, initialDelayMs: 33, jitter: 0.3 }, 2, () => 0.123))).toBe(true);
  });

  it('keeps the default policy within 20% of 200 ms, 400 ms, 800 ms ...', () => {
    for (const [attempt, base] of [
      [1, 200],
      [2, 400],
      [3, 800],
      [4, 1600],
    ]) {
      expect(backoffDelay(defaultRetryPolicy, attempt, () => 0)).toBe(base * 0.8);
      expect(backoffDelay(defaultRetryPolicy, attempt, () => 0.999999)).toBe(base * 1.2);
    }
  });
});
