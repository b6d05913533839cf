/**
 * processor: runs the user's subject handlers on MESH_ROUTED, partition by
 * partition, and publishes what they emit to MESH_PROCESSED. At start it
 * declares its handlers in `mesh_routes`: the router's default routes.
 */
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { Buckets, handlerStatePrefix, RouteKeyPrefix, ServiceNeeds } from '@mesh/contracts';
import {
  createStage,
  HandlerStateStore,
  loadHandlerModules,
  processorWorker,
  registry,
  RetryLedger,
  runService,
  sendJson,
  type ProcessorCounters,
  type RunningService,
  type ServiceContext,
} from '@mesh/runtime';
import { loadProcessorConfig, type ProcessorConfig } from './config';
import { handlers } from './handlers';

async function start(ctx: ServiceContext<ProcessorConfig>): Promise<RunningService> {
  const { config, nc, js, log, http } = ctx;
  const byName = registry('handler', [...handlers, ...loadHandlerModules(config.processor.handlerModules)]);

  const routes = await new Kvm(nc).open(Buckets.routes);
  for (const h of byName.values()) {
    await routes.put(`${RouteKeyPrefix.handler}${h.name}`, JSON.stringify({ types: h.types, description: h.description ?? '' }));
  }
  log.info('handlers declared', { handlers: [...byName.keys()] });

  const counters: ProcessorCounters = { processed: 0, emitted: 0, failed: 0, retried: 0 };
  const checkpoints = await new Kvm(nc).open(Buckets.checkpoints);
  const jsm = await jetstreamManager(nc);
  http.route(
    'GET',
    '/v1/handlers',
    (_req, res) =>
      sendJson(res, 200, { handlers: [...byName.values()].map((h) => ({ name: h.name, types: h.types, description: h.description ?? '' })), counters }),
    'query',
    {
      summary: 'the handlers this instance hosts, and its counters',
      responses: { 200: { description: 'each handler with the event types it takes; events processed, emitted, failed and retried since start' } },
    },
  );

  const stage = await createStage(ctx, 'processor', async (partition, resume, _ensureLease, { epoch }) => {
    const ledger = await RetryLedger.load(checkpoints, jsm, partition, resume.ackFloor);
    if (ledger.size() > 0) log.info('partition has events waiting for a retry', { partition, envelopes: ledger.size() });
    const state = await HandlerStateStore.load(checkpoints, jsm, handlerStatePrefix(partition));
    if (state.size() > 0) log.info('partition has handler state', { partition, keys: state.size() });
    return processorWorker({
      js,
      partition,
      partitions: config.mesh.partitions,
      handlers: byName,
      keyConcurrency: config.processor.keyConcurrency,
      maxEvents: config.envelope.maxEvents,
      maxBytes: config.envelope.maxBytes,
      counters,
      ledger,
      resume,
      epoch,
      log,
      metrics: ctx.metrics,
      state,
    });
  });
  await stage.start();
  return stage;
}

void runService({
  name: 'processor',
  needs: ServiceNeeds.processor,
  loadConfig: () => loadProcessorConfig(),
  start,
});
