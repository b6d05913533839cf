import { defer, tap, type Observable } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { keyLanes } from './key-lanes';

let scheduler: TestScheduler;
beforeEach(() => {
  scheduler = new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
});

interface Item {
  key: string;
  name: string;
  /** Frames of virtual time its work takes. */
  frames: number;
}

const item = (key: string, name: string, frames: number): Item => ({ key, name, frames });
const keyOf = (i: Item) => i.key;

/** A `work` that takes `i.frames` of virtual time, then emits `i.name`; counts how many run at once. */
function timedWork(cold: (marbles: string, values?: Record<string, string>) => Observable<string>) {
  const stats = { running: 0, mostRunning: 0, started: [] as string[] };
  const work = (i: Item) =>
    defer(() => {
      stats.running++;
      stats.mostRunning = Math.max(stats.mostRunning, stats.running);
      stats.started.push(i.name);
      return cold(`${'-'.repeat(i.frames)}(x|)`, { x: i.name });
    }).pipe(tap({ complete: () => stats.running-- }));
  return { work, stats };
}

describe('keyLanes', () => {
  it("works on one key's values one after another, in arrival order, even when a later one is quicker", () => {
    scheduler.run(({ cold, expectObservable }) => {
      const { work, stats } = timedWork(cold);
      const source = cold('abc|', { a: item('k', 'a', 5), b: item('k', 'b', 1), c: item('k', 'c', 2) });
      expectObservable(source.pipe(keyLanes(keyOf, work))).toBe('-----ab-(c|)', { a: 'a', b: 'b', c: 'c' });
      scheduler.flush();
      expect(stats.mostRunning).toBe(1);
    });
  });

  it('works on different keys at the same time', () => {
    scheduler.run(({ cold, expectObservable }) => {
      const { work, stats } = timedWork(cold);
      const source = cold('(abcd|)', { a: item('a', 'a', 3), b: item('b', 'b', 3), c: item('c', 'c', 3), d: item('d', 'd', 3) });
      expectObservable(source.pipe(keyLanes(keyOf, work))).toBe('---(abcd|)', { a: 'a', b: 'b', c: 'c', d: 'd' });
      scheduler.flush();
      expect(stats.mostRunning).toBe(4);
    });
  });

  it('does not let a slow key delay the values of another key', () => {
    scheduler.run(({ cold, expectObservable }) => {
      const { work } = timedWork(cold);
      const source = cold('s123|', { s: item('slow', 's', 10), 1: item('fast', '1', 1), 2: item('fast', '2', 1), 3: item('fast', '3', 1) });
      expectObservable(source.pipe(keyLanes(keyOf, work))).toBe('--123-----(s|)', { s: 's', 1: '1', 2: '2', 3: '3' });
    });
  });

  it('works on at most `concurrency` keys at once, and on a waiting key once a slot is free', () => {
    scheduler.run(({ cold, expectObservable }) => {
      const { work, stats } = timedWork(cold);
      const source = cold('abc|', { a: item('a', 'a', 5), b: item('b', 'b', 5), c: item('c', 'c', 5) });
      expectObservable(source.pipe(keyLanes(keyOf, work, 2))).toBe('-----ab---(c|)', { a: 'a', b: 'b', c: 'c' });
      scheduler.flush();
      expect(stats.mostRunning).toBe(2);
    });
  });

  it('loses no value of a key that had to wait for a slot', () => {
    scheduler.run(({ cold }) => {
      const { work, stats } = timedWork(cold);
      const source = cold('a1b2c3|', {
        a: item('a', 'a', 4), b: item('b', 'b', 4), c: item('c', 'c', 4),
        1: item('a', '1', 4), 2: item('b', '2', 4), 3: item('c', '3', 4),
      });
      const out: string[] = [];
      source.pipe(keyLanes(keyOf, work, 1)).subscribe((v) => out.push(v));
      scheduler.flush();
      expect(stats.mostRunning).toBe(1);
      expect(out.slice().sort()).toEqual(['1', '2', '3', 'a', 'b', 'c']);
      for (const [first, second] of [['a', '1'], ['b', '2'], ['c', '3']]) expect(out.indexOf(first)).toBeLessThan(out.indexOf(second));
    });
  });

  it('propagates an error of the work on any key', () => {
    scheduler.run(({ cold, expectObservable }) => {
      const work = (i: Item) => (i.key === 'bad' ? cold('--#', undefined, new Error('boom')) : cold('-----(x|)', { x: i.name }));
      const source = cold('ab|', { a: item('good', 'a', 0), b: item('bad', 'b', 0) });
      expectObservable(source.pipe(keyLanes(keyOf, work))).toBe('---#', undefined, new Error('boom'));
    });
  });
});
