import { TokenBucket } from './token-bucket';

describe('TokenBucket', () => {
  it('starts full and lets a burst of its capacity through at once, then refuses', () => {
    const b = new TokenBucket(100, 100, 0);
    expect(b.tryTake(60, 0)).toBe(true);
    expect(b.tryTake(40, 0)).toBe(true);
    expect(b.tryTake(1, 0)).toBe(false);
  });

  it('refills at its rate and never above its capacity', () => {
    const b = new TokenBucket(100, 50, 0);
    expect(b.tryTake(50, 0)).toBe(true);
    expect(b.available(100)).toBeCloseTo(10);
    expect(b.available(10_000)).toBe(50);
  });

  it('takes all or nothing: a refused take leaves the tokens there', () => {
    const b = new TokenBucket(10, 10, 0);
    expect(b.tryTake(8, 0)).toBe(true);
    expect(b.tryTake(5, 0)).toBe(false);
    expect(b.available(0)).toBe(2);
  });

  it('says how long until n tokens are there, and Infinity for more than it can hold', () => {
    const b = new TokenBucket(10, 20, 0);
    b.tryTake(20, 0);
    expect(b.msUntil(5, 0)).toBeCloseTo(500);
    expect(b.msUntil(0, 0)).toBe(0);
    expect(b.msUntil(21, 0)).toBe(Infinity);
    expect(b.msUntilFull(1000)).toBeCloseTo(1000);
  });

  it('ignores a clock that goes backwards instead of draining', () => {
    const b = new TokenBucket(10, 10, 1000);
    b.tryTake(10, 1000);
    expect(b.available(500)).toBe(0);
    expect(b.available(1500)).toBeCloseTo(5);
  });

  it('refuses a rate or capacity of zero', () => {
    expect(() => new TokenBucket(0, 1, 0)).toThrow(/rate and a capacity above zero/);
  });
});
