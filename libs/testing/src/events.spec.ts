import { eventually, EventuallyTimeoutError } from './events';

describe('eventually', () => {
  it('resolves true as soon as the check holds', async () => {
    let n = 0;
    await expect(eventually(async () => ++n === 3, 5_000, 1)).resolves.toBe(true);
    expect(n).toBe(3);
  });

  it('counts a check that throws as not yet, and goes on', async () => {
    let n = 0;
    await expect(
      eventually(
        async () => {
          if (++n < 3) throw new Error('busy');
          return true;
        },
        5_000,
        1,
      ),
    ).resolves.toBe(true);
  });

  it('gives up with an error naming the timeout, the last result and the state described, instead of returning false', async () => {
    let n = 0;
    const err = await eventually(
      async () => false,
      30,
      5,
      () => ({ count: ++n }),
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EventuallyTimeoutError);
    expect((err as Error).message).toMatch(/^condition not met within 30 ms \(\d+ checks\): the last check returned false; state: \{"count":1\}$/);
    expect((err as EventuallyTimeoutError).state).toEqual({ count: 1 });
  });

  it('reports the last error a check threw, whether the last check threw or returned false after it', async () => {
    const threw = await eventually(
      async () => {
        throw new Error('connection refused');
      },
      20,
      5,
    ).catch((e: unknown) => e as EventuallyTimeoutError);
    expect(threw.message).toContain('the last check threw: Error: connection refused');
    expect((threw.lastError as Error).message).toBe('connection refused');

    let n = 0;
    const then = await eventually(
      async () => {
        if (++n === 1) throw new Error('not up yet');
        return false;
      },
      20,
      5,
    ).catch((e: unknown) => e as EventuallyTimeoutError);
    expect(then.message).toContain('the last check returned false; an earlier check threw: Error: not up yet');
  });
});
