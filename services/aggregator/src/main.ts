/**
 * aggregator: keeps windowed aggregations of MESH_PROCESSED by event time,
 * partition by partition, checkpointed, forgetting keys past
 * MESH_STATE_RETENTION; serves the results from KV `mesh_aggregates` (any
 * instance answers for any key; aggregate-routes.ts) and publishes closed
 * windows on `mesh.aggregates.<name>`.
 */
import { Kvm } from '@nats-io/kv';
import { Buckets, ServiceNeeds } from '@mesh/contracts';
import { createStage, PartitionWindows, registry, runService, type RunningService, type ServiceContext } from '@mesh/runtime';
import { aggregateRoutes } from './aggregate-routes';
import { aggregations as builtIn } from './aggregations';
import { aggregatorWorker, loadWindows, type AggregatorCounters } from './aggregator-worker';
import { loadAggregatorConfig, type AggregatorConfig } from './config';
import { loadAggregationModules } from './load-aggregation-modules';

async function start(ctx: ServiceContext<AggregatorConfig>): Promise<RunningService> {
  const { config, nc, js, http } = ctx;
  const aggregations = [...builtIn, ...loadAggregationModules(config.aggregator.aggregationModules)];
  const byName = registry('aggregation', aggregations);
  const kvm = new Kvm(nc);
  const results = await kvm.open(Buckets.aggregates);
  const checkpoints = await kvm.open(Buckets.checkpoints);
  const counters: AggregatorCounters = { applied: 0, skipped: 0, late: 0, closed: 0 };

  aggregateRoutes(http, { byName, js, results, counters, heartbeatMs: config.aggregator.updatesHeartbeat });

  const stage = await createStage(ctx, 'aggregator', async (partition, _resume, ensureLease, { epoch }) => {
    const { windows, checkpoint } = await loadWindows(
      checkpoints,
      results,
      partition,
      () =>
        new PartitionWindows(aggregations, {
          defaultLatenessMs: config.aggregator.allowedLateness,
          retainClosed: config.aggregator.retainWindows,
          retentionMs: config.aggregator.stateRetention,
        }),
    );
    return aggregatorWorker({ js, partition, results, windows, checkpoint, counters, ensureLease, epoch });
  });
  await stage.start();
  return stage;
}

void runService({
  name: 'aggregator',
  needs: ServiceNeeds.aggregator,
  loadConfig: () => loadAggregatorConfig(),
  start,
});
