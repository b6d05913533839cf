/**
 * aggregator: keeps windowed aggregations of MESH_PROCESSED by event time,
 * partition by partition, checkpointed; serves the results from KV
 * `mesh_aggregates` (any instance answers for any key) and publishes closed
 * windows on `mesh.aggregates.<name>`.
 */
import { Kvm } from '@nats-io/kv';
import { aggregateKvKey, Buckets, ServiceNeeds } from '@mesh/contracts';
import { createStage, registry, runService, sendError, sendJson, type RunningService, type ServiceContext } from '@mesh/runtime';
import { aggregations } from './aggregations';
import { aggregatorWorker, loadWindows, type AggregatorCounters } from './aggregator-worker';
import { loadAggregatorConfig, type AggregatorConfig } from './config';
import { PartitionWindows } from './window-state';

async function start(ctx: ServiceContext<AggregatorConfig>): Promise<RunningService> {
  const { config, nc, js, http } = ctx;
  const byName = registry('aggregation', aggregations);
  const kvm = new Kvm(nc);
  const results = await kvm.open(Buckets.aggregates);
  const checkpoints = await kvm.open(Buckets.checkpoints);
  const counters: AggregatorCounters = { applied: 0, skipped: 0, late: 0, closed: 0 };

  http.route('GET', '/v1/aggregates', (_req, res) =>
    sendJson(res, 200, { aggregations: [...byName.values()].map((a) => ({ name: a.name, window: a.window, types: a.types ?? ['>'] })), counters }),
    'query',
  );
  http.route('GET', '/v1/aggregates/:name/:key', async (_req, res, { name, key }) => {
    if (!byName.has(name)) {
      return sendError(res, 404, `unknown aggregation '${name}'; known aggregations: ${[...byName.keys()].join(', ')}`);
    }
    let entry;
    try {
      entry = await results.get(aggregateKvKey(name, key));
    } catch (err) {
      // The bucket is electing a leader or NATS is away: nothing is wrong with the request.
      return sendError(res, 503, `results are unavailable right now (${(err as Error).message}); retry`, {}, { 'retry-after': '1' });
    }
    if (!entry || entry.operation !== 'PUT' || entry.length === 0) return sendJson(res, 200, { name, key, windows: [] });
    sendJson(res, 200, entry.json());
  }, 'query');

  const stage = await createStage(ctx, 'aggregator', async (partition, _resume, ensureLease) => {
    const { windows, checkpoint } = await loadWindows(checkpoints, partition, () =>
      new PartitionWindows(aggregations, { defaultLatenessMs: config.aggregator.allowedLateness, retainClosed: config.aggregator.retainWindows }),
    );
    return aggregatorWorker({ js, partition, results, windows, checkpoint, counters, ensureLease });
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
