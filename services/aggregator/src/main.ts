/**
 * aggregator: keeps windowed aggregations of MESH_PROCESSED by event time,
 * partition by partition, checkpointed, forgetting keys past
 * MESH_STATE_RETENTION; writes the results to KV `mesh_aggregates` once per
 * commit and answers queries for the partitions it owns from its live state
 * (any instance answers for any key: it asks the owner, or reads KV while
 * the partition moves; aggregate-routes.ts, result-queries.ts); publishes
 * closed windows on `mesh.aggregates.<name>`.
 */
import { Kvm } from '@nats-io/kv';
import { Buckets, ServiceNeeds } from '@mesh/contracts';
import { createStage, PartitionWindows, registry, runService, type RunningService, type ServiceContext } from '@mesh/runtime';
import { aggregateRoutes } from './aggregate-routes';
import { aggregations as builtIn } from './aggregations';
import { aggregatorWorker, loadWindows, type AggregatorCounters } from './aggregator-worker';
import { loadAggregatorConfig, type AggregatorConfig } from './config';
import { loadAggregationModules } from './load-aggregation-modules';
import { ResultQueries } from './result-queries';

async function start(ctx: ServiceContext<AggregatorConfig>): Promise<RunningService> {
  const { config, nc, js, http, log } = ctx;
  const aggregations = [...builtIn, ...loadAggregationModules(config.aggregator.aggregationModules)];
  const byName = registry('aggregation', aggregations);
  const kvm = new Kvm(nc);
  const results = await kvm.open(Buckets.aggregates);
  const checkpoints = await kvm.open(Buckets.checkpoints);
  const counters: AggregatorCounters = { applied: 0, skipped: 0, late: 0, closed: 0 };
  const queries = new ResultQueries(nc, { partitions: config.mesh.partitions, log, metrics: ctx.metrics });

  aggregateRoutes(http, { byName, js, results, counters, queries, heartbeatMs: config.aggregator.updatesHeartbeat });

  // `stage` is read only when a partition opens, after createStage returned.
  const stage = await createStage(
    ctx,
    'aggregator',
    async (partition, _resume, ensureLease, { epoch }) => {
      const { windows, checkpoint, owned } = await loadWindows(
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
      // Answers only while this run is the partition's: ensureLease also fails once the run was abandoned.
      queries.serve(partition, owned, () => stage.ownership.holds(partition) && leaseHeld(ensureLease));
      return aggregatorWorker({ js, partition, results, windows, checkpoint, owned, counters, ensureLease, epoch });
    },
    // Stopped after the partition's last batch wrote its results, before its lease is released.
    {
      onPartitionChange: (partition, consuming) => {
        if (!consuming) queries.stop(partition);
      },
    },
  );
  await stage.start();
  return {
    ...stage,
    async stop(timeoutMs) {
      await stage.stop(timeoutMs);
      queries.stopAll();
    },
  };
}

function leaseHeld(ensureLease: () => void): boolean {
  try {
    ensureLease();
    return true;
  } catch {
    return false;
  }
}

void runService({
  name: 'aggregator',
  needs: ServiceNeeds.aggregator,
  loadConfig: () => loadAggregatorConfig(),
  start,
});
