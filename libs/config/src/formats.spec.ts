import { parseDuration } from './formats';

describe('parseDuration', () => {
  it.each([
    ['250ms', 250],
    ['30s', 30_000],
    ['10m', 600_000],
    ['1h', 3_600_000],
    ['1.5s', 1500],
    ['0s', 0],
    ['500', 500],
    [' 2m ', 120_000],
  ])('reads %j as %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it('takes a non-negative number as milliseconds', () => {
    expect(parseDuration(1200)).toBe(1200);
    expect(parseDuration(0)).toBe(0);
  });

  it.each(['5x', '', 'ms', '-1s', '10 m', '1d', 'PT1M'])('refuses %j with examples of what is accepted', (text) => {
    expect(() => parseDuration(text)).toThrow('must be a duration such as "250ms", "30s", "10m" or "1h"');
  });

  it.each([-1, Number.NaN, Number.POSITIVE_INFINITY])('refuses the number %d', (n) => {
    expect(() => parseDuration(n)).toThrow(/must be a duration/);
  });

  it('refuses values that are neither strings nor numbers', () => {
    expect(() => parseDuration(null)).toThrow(/must be a duration/);
    expect(() => parseDuration({ ms: 5 })).toThrow(/must be a duration/);
  });
});
