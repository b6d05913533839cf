/**
 * Seeded randomness for tests that pick at random (fuzzed inputs, keys, kill
 * points, pauses): one seed decides every pick, so a failure is rerun
 * exactly by giving the seed back, and every failure names it.
 */
import { fnv1a32 } from '@mesh/contracts';

/** mulberry32: a small, fast, seedable PRNG; good enough to pick test cases. */
export function mulberry32(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  return {
    next,
    /** 0 .. n-1. */
    int,
    /** lo .. hi, both included. */
    between: (lo: number, hi: number) => lo + int(hi - lo + 1),
    pick: <T>(items: readonly T[]): T => items[int(items.length)],
    chance: (p: number) => next() < p,
  };
}
export type Rng = ReturnType<typeof mulberry32>;

/**
 * The seed of this test run: `variable` (default MESH_TEST_SEED) when set, an
 * unsigned 32-bit integer; otherwise a fresh one. A value that is not such an
 * integer is an error naming it.
 */
export function testSeed(variable = 'MESH_TEST_SEED'): number {
  const given = process.env[variable];
  if (given === undefined || given === '') return Math.floor(Math.random() * 2 ** 32) >>> 0;
  if (!/^\d+$/.test(given) || Number(given) >= 2 ** 32) throw new Error(`${variable} must be an integer from 0 to 4294967295, got ${JSON.stringify(given)}`);
  return Number(given);
}

/** A generator of its own for each part of a test (`label`), so one part's picks do not shift when another part changes. */
export function seededRng(seed: number, label: string): Rng {
  return mulberry32((seed ^ fnv1a32(label)) >>> 0);
}

/**
 * Run `fn`; if it throws, the error's message (and stack) begins with
 * `seed=<seed>` and ends with how to rerun it (`rerun`), so the failure
 * report says which seed to give back.
 */
export async function withSeed<T>(seed: number, rerun: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof Error) {
      const head = `seed=${seed} (rerun: ${rerun})`;
      const message = err.message;
      // The stack is formatted when first read: read it before the message changes.
      const stack = err.stack;
      err.message = `${head}\n${message}`;
      if (stack?.includes(message)) err.stack = stack.replace(message, err.message);
      // Jest prints a failed expectation from its matcher result: prefix that too.
      const result = (err as { matcherResult?: { message?: unknown } }).matcherResult;
      if (result && typeof result.message === 'string') result.message = `${head}\n${result.message}`;
    }
    throw err;
  }
}
