/**
 * router: consumes MESH_INGEST partition by partition, drops duplicate
 * events, matches each event against the route table (kept in KV
 * `mesh_routes`, reloaded live) and forwards it to its handlers'
 * subjects; unroutable events go to the dead-letter stream.
 */
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { Buckets, parseHandlerRecord, ServiceNeeds } from '@mesh/contracts';
import { createStage, runService, sendJson, type RunningService, type ServiceContext } from '@mesh/runtime';
import { loadRouterConfig, type RouterConfig } from './config';
import { rebuildDedup } from './rebuild-dedup';
import { HandlerKeyPrefix, parseRule, RouteTable, RuleKeyPrefix } from './route-table';
import { routerWorker, type RouterCounters } from './router-worker';

async function start(ctx: ServiceContext<RouterConfig>): Promise<RunningService> {
  const { config, nc, js, log, http } = ctx;
  const jsm = await jetstreamManager(nc);

  const table = new RouteTable();
  const routes = await new Kvm(nc).open(Buckets.routes);
  let loaded = false;
  let resolveFirstHandler!: () => void;
  const firstHandler = new Promise<void>((r) => (resolveFirstHandler = r));
  const watcher = await routes.watch();
  void (async () => {
    for await (const e of watcher) {
      const deleted = e.operation === 'DEL' || e.operation === 'PURGE';
      if (e.key.startsWith(HandlerKeyPrefix)) {
        const name = e.key.slice(HandlerKeyPrefix.length);
        if (deleted) table.removeHandler(name);
        else {
          const record = parseHandlerRecord(e.string());
          if (record) table.setHandler(name, record.types, record.service);
          else log.error('ignoring handler declaration: not {"types": [strings], "service": name}', { key: e.key });
        }
      } else if (e.key.startsWith(RuleKeyPrefix)) {
        const name = e.key.slice(RuleKeyPrefix.length);
        if (deleted) table.removeRule(name);
        else {
          let value: unknown;
          try {
            value = e.json();
          } catch {
            value = undefined;
          }
          const { rule, problems } = parseRule(name, value);
          if (rule) table.setRule(rule);
          else log.error('ignoring route rule', { key: e.key, problems });
        }
      }
      if (table.handlerCount > 0) resolveFirstHandler();
      if (e.delta === 0) loaded = true;
    }
  })();

  const counters: RouterCounters = { routed: 0, duplicates: 0, dropped: 0, unroutable: 0 };
  http.route('GET', '/v1/routes', (_req, res) => sendJson(res, 200, { counters }), 'query', {
    summary: "the router's counters: events routed, duplicates dropped, dropped by a rule, unroutable",
    description: 'The route table itself is in the KV bucket mesh_routes (`npm run mesh -- routes ls`).',
    responses: {
      200: {
        description: 'counters since start',
        content: { 'application/json': { type: 'object', properties: { counters: { type: 'object', additionalProperties: { type: 'integer' } } } } },
      },
    },
  });

  const stage = await createStage(ctx, 'router', async (partition, { ackFloor }, _ensureLease, { epoch }) => {
    const { window, scanned } = await rebuildDedup(js, jsm, partition, config.mesh.duplicateWindow, ackFloor);
    log.debug('partition opened', { partition, dedup_scanned: scanned, dedup_keys: window.size });
    return routerWorker({ js, partition, table, dedup: window, counters, log, metrics: ctx.metrics, epoch });
  });

  // Until some handler service has declared its handlers every event would be
  // unroutable, so the router waits for the first declaration.
  let started = false;
  void firstHandler.then(async () => {
    log.info('route table loaded; consuming', { handlers: table.handlerCount });
    await stage.start();
    started = true;
  });
  if (table.handlerCount === 0) log.info('waiting for a handler service to declare its handlers in mesh_routes');

  return {
    readiness: () => ({ routes: loaded && started, ...stage.readiness() }),
    discovery: stage.discovery,
    async stop(timeoutMs) {
      await stage.stop(timeoutMs);
      watcher.stop();
    },
  };
}

void runService({
  name: 'router',
  needs: ServiceNeeds.router,
  loadConfig: () => loadRouterConfig(),
  start,
});
