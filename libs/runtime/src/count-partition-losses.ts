/**
 * Counts the partitions a stage instance lost (lease lapsed or taken) in
 * mesh_partition_losses_total{stage}, and starts the stage's counters that
 * alerts take `increase()` of at 0: Prometheus sees a series only from its
 * first sample, so a counter that first appears at 1 shows no increase and
 * its first loss or redelivery would never alert.
 */
import type { Observable, Subscription } from 'rxjs';
import type { MeshInstruments } from '@mesh/telemetry';

export function countPartitionLosses(
  lost$: Observable<number>,
  metrics: Pick<MeshInstruments, 'partitionLosses' | 'redeliveries'>,
  stage: string,
): Subscription {
  metrics.partitionLosses.add(0, { stage });
  metrics.redeliveries.add(0, { stage });
  return lost$.subscribe(() => metrics.partitionLosses.add(1, { stage }));
}
