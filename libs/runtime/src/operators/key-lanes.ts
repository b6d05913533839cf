import { concatMap, groupBy, mergeMap, pipe, ReplaySubject, type ObservableInput, type OperatorFunction } from 'rxjs';

/**
 * Per-key lanes: values of one key are worked on one after another, in
 * order; different keys run concurrently (at most `concurrency` keys at once),
 * so a slow key does not hold up the others.
 *
 * A key that has to wait for a free slot keeps its values (each lane buffers
 * what arrives before it is subscribed), and a lane ends when the source
 * completes: meant for finite sources such as one batch, where a waiting key
 * starts as soon as a lane finishes.
 */
export function keyLanes<T, R>(keyOf: (value: T) => string, work: (value: T) => ObservableInput<R>, concurrency = Number.POSITIVE_INFINITY): OperatorFunction<T, R> {
  return pipe(
    groupBy(keyOf, { connector: () => new ReplaySubject<T>() }),
    mergeMap((lane) => lane.pipe(concatMap(work)), concurrency),
  );
}
