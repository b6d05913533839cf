import { RateLimiter } from './rate-limiter';

function limiter(o: { events?: number; bytes?: number; burstMs?: number }) {
  const clock = { t: 0 };
  const l = new RateLimiter({ eventsPerSecond: o.events ?? 0, bytesPerSecond: o.bytes ?? 0, burstMs: o.burstMs ?? 1000, now: () => clock.t });
  return { l, clock };
}

describe('RateLimiter', () => {
  it('lets everything through with no headers when both limits are 0', () => {
    const { l } = limiter({});
    expect(l.enabled).toBe(false);
    expect(l.take('a', 1e9, 1e12)).toEqual({ ok: true, headers: {} });
  });

  it('refuses past the events rate with Retry-After and the RateLimit fields, and takes nothing then', () => {
    const { l, clock } = limiter({ events: 100 });
    expect(l.take('a', 80, 0).ok).toBe(true);
    const refused = l.take('a', 30, 0);
    expect(refused.ok).toBe(false);
    expect(refused.limit).toBe('events');
    expect(refused.headers).toEqual({
      'retry-after': '1',
      'ratelimit-limit': '100',
      'ratelimit-remaining': '20',
      'ratelimit-reset': '1',
      'ratelimit-policy': '100;w=1',
    });
    // The refused 30 were not taken: 20 are still there.
    expect(l.take('a', 20, 0).ok).toBe(true);
    clock.t = 500;
    expect(l.take('a', 50, 0).ok).toBe(true);
  });

  it('keeps one bucket per client', () => {
    const { l } = limiter({ events: 10 });
    expect(l.take('a', 10, 0).ok).toBe(true);
    expect(l.take('a', 1, 0).ok).toBe(false);
    expect(l.take('b', 10, 0).ok).toBe(true);
  });

  it('refuses on bytes when bytes run out, taking no events either', () => {
    const { l } = limiter({ events: 100, bytes: 1000 });
    const refused = l.take('a', 1, 1500);
    expect(refused).toMatchObject({ ok: false, limit: 'bytes' });
    expect(refused.reason).toMatch(/more than the 1000 a client may send at once/);
    expect(l.take('a', 100, 1000)).toMatchObject({ ok: true, headers: { 'ratelimit-remaining': '0' } });
  });

  it('checks without taking', () => {
    const { l } = limiter({ bytes: 1000 });
    expect(l.check('a', 0, 1000).ok).toBe(true);
    expect(l.check('a', 0, 1000).ok).toBe(true);
    expect(l.take('a', 0, 1000).ok).toBe(true);
    expect(l.check('a', 0, 1).ok).toBe(false);
  });

  it('gives a burst of rate x burst time and a Retry-After to match the wait', () => {
    const { l } = limiter({ events: 10, burstMs: 5000 });
    expect(l.take('a', 50, 0).ok).toBe(true);
    const refused = l.take('a', 30, 0);
    expect(refused.headers['retry-after']).toBe('3');
    expect(refused.headers['ratelimit-policy']).toBe('50;w=5');
  });

  it('forgets clients whose buckets have refilled', () => {
    const { l, clock } = limiter({ events: 10 });
    l.take('a', 5, 0);
    l.take('b', 5, 0);
    clock.t = 60_000;
    l.take('c', 1, 0);
    expect(l.size).toBe(1);
  });
});
