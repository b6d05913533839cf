/**
 * sink: writes every aggregation's windows into the PostgreSQL table
 * `mesh_aggregates`, effectively once, from the results the aggregator
 * stores in JetStream (see results-sink.ts for the guarantees). Its
 * readiness check `postgres` says whether PostgreSQL answers.
 */
import { jetstreamManager } from '@nats-io/jetstream';
import { Pool } from 'pg';
import { ServiceNeeds } from '@mesh/contracts';
import { redactUrl } from '@mesh/messaging';
import { runService, sendJson, type RunningService, type ServiceContext } from '@mesh/runtime';
import { loadSinkConfig, type SinkConfig } from './config';
import { ResultsSink } from './results-sink';

async function start(ctx: ServiceContext<SinkConfig>): Promise<RunningService> {
  const { config, log, js, nc, http } = ctx;
  const s = config.sink;
  const pool = new Pool({
    connectionString: s.postgresUrl,
    max: s.poolSize,
    connectionTimeoutMillis: 5_000,
    query_timeout: 60_000,
    application_name: `mesh-sink:${config.instance.id}`,
  });
  // An idle connection that PostgreSQL closes (a restart) is an event, not a crash: the next write reconnects.
  pool.on('error', (err) => log.warn('PostgreSQL closed an idle connection', { error: redactUrl(err.message) }));
  log.info('writing results to PostgreSQL', { url: redactUrl(s.postgresUrl), batch_size: s.batchSize, flush_interval_ms: s.flushInterval });

  const sink = new ResultsSink({
    js,
    jsm: await jetstreamManager(nc),
    pool,
    log,
    batchSize: s.batchSize,
    flushIntervalMs: s.flushInterval,
    retryMinMs: s.retryMin,
    retryMaxMs: s.retryMax,
    ackWaitMs: config.consumer.ackWait,
  });
  http.route('GET', '/v1/sink', (_req, res) => sendJson(res, 200, { postgres: sink.postgresReady, counters: sink.counters }), 'query', {
    summary: 'whether PostgreSQL takes writes, and what the sink has written',
    responses: {
      200: {
        description: 'PostgreSQL reachable, and counters since start',
        content: {
          'application/json': {
            type: 'object',
            properties: { postgres: { type: 'boolean' }, counters: { type: 'object', additionalProperties: { type: 'integer' } } },
          },
        },
      },
    },
  });
  sink.start();
  return {
    readiness: () => ({ postgres: sink.postgresReady }),
    async stop(timeoutMs) {
      await sink.stop(timeoutMs);
      await pool.end().catch(() => undefined);
    },
  };
}

void runService({
  name: 'sink',
  needs: ServiceNeeds.sink,
  loadConfig: () => loadSinkConfig(),
  start,
});
