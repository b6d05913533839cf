/**
 * A handler service: the processor and every team's service are this, with
 * their own name and handlers. It consumes its own partition consumers of
 * MESH_ROUTED (`<name>-p<NN>`, filter `mesh.routed.<name>.<p>.>`) with the
 * leases, fencing, per-key order, retries, dead letters (`mesh.dlq.<name>.<p>`),
 * tracing, metrics, readiness and discovery of every stage, and publishes
 * what its handlers emit to MESH_PROCESSED.
 *
 * At start it declares each handler in `mesh_routes` (`handler.<handler>` =
 * `{types, description, service}`): the router routes the handler's events to
 * this service from then on, with no restart of anything. A record is never
 * deleted here (an instance that stops, or an older version without the
 * handler, must not unroute it): `mesh handlers rm` does that. Its member
 * entry in `mesh_members` lists the handlers it hosts (`mesh handlers`), and
 * partitions go to the instances hosting every handler declared for the
 * service (declared-handlers.ts): in a rolling update that adds a handler,
 * the new instances take them at once.
 */
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { Buckets, handlerServiceNameProblem, HandlerServiceNeeds, handlerStatePrefix, RouteKeyPrefix, type HandlerRecord } from '@mesh/contracts';
import { DefinitionError } from '../errors';
import { registry, type AnyHandlerDefinition } from '../handler';
import { sendJson } from '../http';
import { runService, type RunningService, type ServiceContext } from '../service';
import { createStage } from '../stage-service';
import { DeclaredHandlers } from './declared-handlers';
import { HandlerRecords } from './handler-records';
import { HandlerStateStore } from './handler-state';
import { loadHandlerServiceConfig, type HandlerServiceConfig } from './handler-service-config';
import { loadHandlerModules } from './load-handler-modules';
import { processorWorker, type ProcessorCounters } from './processor-worker';
import { RetryLedger } from './retry-ledger';

export interface HandlerServiceOptions {
  /** The service's name: its subjects, consumers, keys and dead letters. */
  name: string;
  /** Its handlers (more may come from MESH_HANDLER_MODULES). */
  handlers: readonly AnyHandlerDefinition[];
  /** HTTP_PORT when the environment does not say. */
  httpPort: number;
}

/** Start handler service `name` in this process (config from env, stop on SIGTERM). */
export function runHandlerService(o: HandlerServiceOptions): Promise<void> {
  const problem = o.name === 'processor' ? undefined : handlerServiceNameProblem(o.name);
  if (problem) throw new DefinitionError('handler service', o.name, `name ${problem}`);
  return runService<HandlerServiceConfig>({
    name: o.name,
    needs: HandlerServiceNeeds,
    loadConfig: () => loadHandlerServiceConfig(o.name, o.httpPort),
    start: (ctx) => startHandlerService(ctx, o),
  });
}

export async function startHandlerService(ctx: ServiceContext<HandlerServiceConfig>, o: HandlerServiceOptions): Promise<RunningService> {
  const { config, nc, js, log, http } = ctx;
  const byName = registry('handler', [...o.handlers, ...loadHandlerModules(config.processor.handlerModules)]);

  const routes = await new Kvm(nc).open(Buckets.routes);
  for (const h of byName.values()) {
    const record: HandlerRecord = { types: [...h.types], description: h.description ?? '', service: o.name };
    await routes.put(`${RouteKeyPrefix.handler}${h.name}`, JSON.stringify(record));
  }
  log.info('handlers declared', { handlers: [...byName.keys()], service: o.name });

  const counters: ProcessorCounters = { processed: 0, emitted: 0, failed: 0, retried: 0 };
  const checkpoints = await new Kvm(nc).open(Buckets.checkpoints);
  const records = await HandlerRecords.open(nc);
  const declared = new DeclaredHandlers(o.name);
  await declared.start(nc, log);
  const jsm = await jetstreamManager(nc);
  http.route(
    'GET',
    '/v1/handlers',
    (_req, res) =>
      sendJson(res, 200, {
        service: o.name,
        handlers: [...byName.values()].map((h) => ({ name: h.name, types: h.types, description: h.description ?? '' })),
        counters,
      }),
    'query',
    {
      summary: 'the handlers this instance hosts, and its counters',
      responses: { 200: { description: 'the service, each handler with the event types it takes; events processed, emitted, failed and retried since start' } },
    },
  );

  const stage = await createStage(
    ctx,
    o.name,
    async (partition, resume, _ensureLease, { epoch }) => {
      const ledger = await RetryLedger.load(checkpoints, jsm, partition, resume.ackFloor, o.name);
      if (ledger.size() > 0) log.info('partition has events waiting for a retry', { partition, envelopes: ledger.size() });
      const state = await HandlerStateStore.load(checkpoints, jsm, handlerStatePrefix(partition, o.name));
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
        service: o.name,
        records,
        state,
      });
    },
    { advertise: { handlers: [...byName.keys()].sort() }, eligible: (live, advertised) => declared.eligible(live, advertised) },
  );
  await stage.start();
  return {
    ...stage,
    async stop(timeoutMs) {
      await stage.stop(timeoutMs);
      declared.stop();
    },
  };
}
