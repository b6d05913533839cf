import { concatMap, groupBy, mergeMap, pipe, type ObservableInput, type OperatorFunction } from 'rxjs';

/**
 * Per-key lanes: values of one key are worked on one after another, in
 * order; different keys run concurrently (at most `concurrency` keys at once),
 * so a slow key does not hold up the others.
 */
export function keyLanes<T, R>(keyOf: (value: T) => string, work: (value: T) => ObservableInput<R>, concurrency = Number.POSITIVE_INFINITY): OperatorFunction<T, R> {
  return pipe(
    groupBy(keyOf),
    mergeMap((lane) => lane.pipe(concatMap(work)), concurrency),
  );
}
