import { defer, tap, throwError, type Observable } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { batchWhileBusy } from './batch-while-busy';

let scheduler: TestScheduler;
beforeEach(() => {
  scheduler = new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
});

/** A `work` that takes `frames` of virtual time per batch, then emits the batch; records when each batch started. */
function slowWork(frames: number, cold: (marbles: string, values?: Record<string, string[]>) => Observable<string[]>) {
  const started: { at: number; batch: string[] }[] = [];
  const work = (batch: string[]) => {
    started.push({ at: scheduler.now(), batch });
    return cold(`${'-'.repeat(frames)}(b|)`, { b: batch });
  };
  return { work, started };
}

describe('batchWhileBusy', () => {
  it('hands the first value over at once, as a batch of one', () => {
    scheduler.run(({ cold, expectObservable }) => {
      const { work, started } = slowWork(2, cold);
      expectObservable(cold('---a---|').pipe(batchWhileBusy(work))).toBe('-----x-|', { x: ['a'] });
      scheduler.flush();
      expect(started).toEqual([{ at: 3, batch: ['a'] }]);
    });
  });

  it('works on values one by one when each arrives after the previous batch is done', () => {
    scheduler.run(({ cold, expectObservable }) => {
      const { work } = slowWork(2, cold);
      expectObservable(cold('a---b---|').pipe(batchWhileBusy(work))).toBe('--x---y-|', { x: ['a'], y: ['b'] });
    });
  });

  it('gathers values that arrive while a batch is being worked on into the next batch', () => {
    scheduler.run(({ cold, expectObservable }) => {
      const { work, started } = slowWork(5, cold);
      expectObservable(cold('a-b-c---------|').pipe(batchWhileBusy(work))).toBe('-----x----y---|', { x: ['a'], y: ['b', 'c'] });
      scheduler.flush();
      expect(started.map((s) => s.at)).toEqual([0, 5]);
    });
  });

  it('hands over at most maxBatch gathered values at a time, oldest first', () => {
    scheduler.run(({ cold, expectObservable }) => {
      const { work } = slowWork(5, cold);
      expectObservable(cold('a-bcd-------------|').pipe(batchWhileBusy(work, 2))).toBe('-----x----y----z--|', {
        x: ['a'],
        y: ['b', 'c'],
        z: ['d'],
      });
    });
  });

  it('works off the gathered values after the source completes, then completes', () => {
    scheduler.run(({ cold, expectObservable }) => {
      const { work } = slowWork(5, cold);
      expectObservable(cold('abc|').pipe(batchWhileBusy(work))).toBe('-----x----(y|)', { x: ['a'], y: ['b', 'c'] });
    });
  });

  it('completes with the source when nothing is gathered or running', () => {
    scheduler.run(({ cold, expectObservable }) => {
      const { work, started } = slowWork(5, cold);
      expectObservable(cold('---|').pipe(batchWhileBusy(work))).toBe('---|');
      scheduler.flush();
      expect(started).toEqual([]);
    });
  });

  it('passes on every value a batch emits', () => {
    scheduler.run(({ cold, expectObservable }) => {
      const work = (batch: string[]) => cold('-1-(2|)', { 1: `${batch.join('')}:1`, 2: `${batch.join('')}:2` });
      expectObservable(cold('a-|').pipe(batchWhileBusy(work))).toBe('-1-(2|)', { 1: 'a:1', 2: 'a:2' });
    });
  });

  it('goes on at once after a batch that completes synchronously', () => {
    scheduler.run(({ cold, expectObservable }) => {
      const calls: string[][] = [];
      const work = (batch: string[]) => {
        calls.push(batch);
        return [batch.length];
      };
      expectObservable(cold('ab-c|').pipe(batchWhileBusy(work))).toBe('ab-c|', { a: 1, b: 1, c: 1 });
      scheduler.flush();
      expect(calls).toEqual([['a'], ['b'], ['c']]);
    });
  });

  it('never works on two batches at once, and hands every value over once, in order', () => {
    scheduler.run(({ cold }) => {
      let running = 0;
      let mostRunning = 0;
      let batches = 0;
      let completed = false;
      const handed: string[] = [];
      const durations = [3, 1, 4, 1, 5];
      // A batch runs from the call of work until its observable completes.
      const work = (batch: string[]) =>
        defer(() => {
          running++;
          mostRunning = Math.max(mostRunning, running);
          handed.push(...batch);
          return cold(`${'-'.repeat(durations[batches++ % durations.length])}|`);
        }).pipe(tap({ complete: () => running-- }));
      cold('abcd-ef-g-hij---k|')
        .pipe(batchWhileBusy(work, 3))
        .subscribe({ complete: () => (completed = true) });
      scheduler.flush();
      expect(completed).toBe(true);
      expect(mostRunning).toBe(1);
      expect(handed).toEqual([...'abcdefghijk']);
      expect(batches).toBeLessThan(handed.length);
    });
  });

  it('propagates an error of the source at once', () => {
    scheduler.run(({ cold, expectObservable, expectSubscriptions }) => {
      const { work } = slowWork(5, cold);
      const source = cold('ab#');
      expectObservable(source.pipe(batchWhileBusy(work))).toBe('--#');
      expectSubscriptions(source.subscriptions).toBe('^-!');
    });
  });

  it('propagates an error of a batch and stops taking values from the source', () => {
    scheduler.run(({ cold, expectObservable, expectSubscriptions }) => {
      const work = (batch: string[]) => (batch.includes('b') ? cold<string[]>('--#', undefined, new Error('boom')) : cold('-----(x|)', { x: batch }));
      const source = cold('a-b--------c--|');
      expectObservable(source.pipe(batchWhileBusy(work))).toBe('-----x-#', { x: ['a'] }, new Error('boom'));
      expectSubscriptions(source.subscriptions).toBe('^------!');
    });
  });

  it('propagates an error thrown by work itself, as concatMap does', () => {
    scheduler.run(({ cold, expectObservable }) => {
      const work = (batch: string[]) => {
        if (batch.includes('b')) throw new Error('boom');
        return cold('-----(x|)', { x: batch });
      };
      expectObservable(cold('a-b--------c--|').pipe(batchWhileBusy(work))).toBe('-----(x#)', { x: ['a'] }, new Error('boom'));
    });
  });

  it('starts no batch after a batch has failed', () => {
    scheduler.run(({ cold, expectObservable }) => {
      const calls: string[][] = [];
      const work = (batch: string[]): Observable<string[]> => {
        calls.push(batch);
        return batch.includes('a') ? cold('-----(x|)', { x: batch }) : throwError(() => new Error('boom'));
      };
      expectObservable(cold('abc---|').pipe(batchWhileBusy(work, 1))).toBe('-----(x#)', { x: ['a'] }, new Error('boom'));
      scheduler.flush();
      expect(calls).toEqual([['a'], ['b']]);
    });
  });

  it('stops the source and the running batch when unsubscribed', () => {
    scheduler.run(({ cold, expectObservable, expectSubscriptions }) => {
      const source = cold('a----b--|');
      const batch = cold('-----(x|)');
      expectObservable(source.pipe(batchWhileBusy(() => batch)), '^--!').toBe('---');
      expectSubscriptions(source.subscriptions).toBe('^--!');
      expectSubscriptions(batch.subscriptions).toBe('^--!');
    });
  });
});
