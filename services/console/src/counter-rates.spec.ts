import { CounterRates, Smoothed } from './counter-rates';

describe('CounterRates', () => {
  it('gives the increase per second between two readings, and nothing for the first', () => {
    const r = new CounterRates();
    expect(r.observe('router/a/in', 100, 1_000)).toBeUndefined();
    expect(r.observe('router/a/in', 300, 3_000)).toBe(100);
  });

  it('counts a restarted instance from zero instead of a negative rate', () => {
    const r = new CounterRates();
    r.observe('router/a/in', 500, 1_000);
    expect(r.observe('router/a/in', 40, 2_000)).toBe(40);
  });

  it('forgets instances not seen since a time', () => {
    const r = new CounterRates();
    r.observe('router/a/in', 5, 1_000);
    r.prune(2_000);
    expect(r.observe('router/a/in', 10, 3_000)).toBeUndefined();
  });
});

describe('Smoothed', () => {
  it('averages the last n values of a key', () => {
    const s = new Smoothed(3);
    expect([s.add('k', 3), s.add('k', 6), s.add('k', 9), s.add('k', 0)]).toEqual([3, 4.5, 6, 5]);
  });
});
