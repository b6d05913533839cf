import { from, Observable, type ObservableInput, type OperatorFunction, type Subscription } from 'rxjs';

/**
 * Adaptive batching: the first value starts `work` at once with a batch of
 * one; values that arrive while `work` runs are gathered and handed over,
 * up to `maxBatch` at a time, as soon as it finishes. Light load gets low
 * latency, heavy load gets large batches, and at most one `work` runs at a
 * time, so batches are handled in order.
 *
 * When the source completes, the gathered values are still worked off before
 * the result completes (a graceful stop finishes what it holds).
 */
export function batchWhileBusy<T, R>(work: (batch: T[]) => ObservableInput<R>, maxBatch = Number.POSITIVE_INFINITY): OperatorFunction<T, R> {
  return (source) =>
    new Observable<R>((subscriber) => {
      let buffer: T[] = [];
      let inner: Subscription | undefined;
      let sourceDone = false;

      const next = () => {
        if (inner || subscriber.closed) return;
        if (buffer.length === 0) {
          if (sourceDone) subscriber.complete();
          return;
        }
        const batch = buffer.length <= maxBatch ? buffer : buffer.slice(0, maxBatch);
        buffer = buffer.length <= maxBatch ? [] : buffer.slice(maxBatch);
        let input: ObservableInput<R>;
        try {
          input = work(batch);
        } catch (err) {
          subscriber.error(err);
          return;
        }
        let finishedSynchronously = false;
        const sub = from(input).subscribe({
          next: (value) => subscriber.next(value),
          error: (err) => subscriber.error(err),
          complete: () => {
            finishedSynchronously = inner === undefined;
            inner = undefined;
            if (!finishedSynchronously) next();
          },
        });
        if (!finishedSynchronously && !sub.closed) inner = sub;
        else next();
      };

      const sourceSub = source.subscribe({
        next: (value) => {
          buffer.push(value);
          next();
        },
        error: (err) => subscriber.error(err),
        complete: () => {
          sourceDone = true;
          next();
        },
      });
      return () => {
        sourceSub.unsubscribe();
        inner?.unsubscribe();
      };
    });
}
