/**
 * Which partitions an instance owns, as an Observable of sets. The stage
 * runner follows it: a partition entering the set is opened and consumed,
 * one leaving it is finished, checkpointed and released.
 */
import { concat, NEVER, of, type Observable } from 'rxjs';

/** One instance owns every partition (a single instance per stage). */
export function allPartitions(partitions: number): Observable<ReadonlySet<number>> {
  return concat(of(new Set(Array.from({ length: partitions }, (_, p) => p))), NEVER);
}
