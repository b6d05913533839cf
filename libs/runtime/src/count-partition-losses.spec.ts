import { Subject } from 'rxjs';
import { createMetrics } from '@mesh/telemetry';
import type { MetricsRegistry } from '@mesh/telemetry';
import { countPartitionLosses } from './count-partition-losses';

describe('countPartitionLosses', () => {
  let metrics: MetricsRegistry;
  beforeEach(() => {
    metrics = createMetrics('processor');
  });
  afterEach(() => metrics.shutdown());

  it('shows mesh_partition_losses_total and mesh_redeliveries_total at 0 before anything is lost, so the first loss is an increase', async () => {
    countPartitionLosses(new Subject<number>(), metrics, 'processor');
    const text = await metrics.renderPrometheus();
    expect(text).toContain('# TYPE mesh_partition_losses_total counter');
    expect(text).toMatch(/^mesh_partition_losses_total\{stage="processor"\} 0$/m);
    expect(text).toMatch(/^mesh_redeliveries_total\{stage="processor"\} 0$/m);
  });

  it('counts every partition that ownership reports lost, per stage', async () => {
    const lost = new Subject<number>();
    countPartitionLosses(lost, metrics, 'processor');
    lost.next(3);
    lost.next(5);
    lost.next(3);
    expect(await metrics.renderPrometheus()).toMatch(/^mesh_partition_losses_total\{stage="processor"\} 3$/m);
  });

  it('stops counting once unsubscribed (the stage stopped)', async () => {
    const lost = new Subject<number>();
    const sub = countPartitionLosses(lost, metrics, 'router');
    lost.next(1);
    sub.unsubscribe();
    lost.next(2);
    expect(await metrics.renderPrometheus()).toMatch(/^mesh_partition_losses_total\{stage="router"\} 1$/m);
  });
});
