/**
 * The life of a service process, the same for all four: load and validate
 * config (a bad value stops start-up with a clear message, exit 2), serve
 * /healthz and /readyz at once, connect to NATS with the service's own
 * credentials (waiting for a server, saying so every few seconds; refused
 * credentials or TLS end start-up with one line, exit 1), provision the mesh
 * idempotently (or, with MESH_PROVISION=false, only check it exists), start
 * the service, and on SIGTERM or SIGINT stop intake, finish in-flight work,
 * checkpoint, drain the connection and exit.
 */
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { ConfigError } from '@mesh/config';
import {
  connectNats,
  describeCredentials,
  NatsCredentialsError,
  NatsRefusedError,
  provisionMesh,
  redactUrl,
  verifyMesh,
  type MeshNeeds,
  type NatsCredentials,
} from '@mesh/messaging';
import { errors as natsErrors } from '@nats-io/nats-core';
import { MeshVersion } from '@mesh/contracts';
import {
  activeTraceIds,
  createMetrics,
  PrometheusContentType,
  startDiscovery,
  startTelemetry,
  type DiscoveryEndpoint,
  type DiscoveryEndpointStats,
  type MetricsRegistry,
} from '@mesh/telemetry';
import { guardRoutes, loadHttpSecurity, type HttpSecurity } from './api-keys/http-security';
import { HttpApp, sendJson } from './http';
import { createLogger, type Logger, type LogLevel } from './logger';

export interface CommonConfig {
  nats: { url: string; inboxPrefix: string } & NatsCredentials;
  http: { port: number; host: string };
  mesh: { partitions: number; replicas: number; duplicateWindow: number; leaseTtl: number; provision: boolean };
  instance: { id: string };
  log: { level: string };
  shutdown: { timeout: number };
  httpTls: { cert: string; key: string };
  apiKeys: { file: string; metricsAuth: string };
}

export interface ServiceContext<C extends CommonConfig> {
  service: string;
  config: C;
  log: Logger;
  nc: NatsConnection;
  js: JetStreamClient;
  http: HttpApp;
  /** The port the HTTP server listens on. */
  httpPort: number;
  /** The mesh's instruments, served on /metrics. */
  metrics: MetricsRegistry;
}

export interface RunningService {
  /** Named readiness checks beyond NATS and provisioning. */
  readiness(): Record<string, boolean>;
  /** Stop taking work, finish what is in flight, checkpoint. */
  stop(timeoutMs: number): Promise<void>;
  /** What NATS service discovery ($SRV.INFO, $SRV.STATS) reports. */
  discovery?: { description: string; endpoints: DiscoveryEndpoint[]; stats(): DiscoveryEndpointStats[] };
}

export interface ServiceDefinition<C extends CommonConfig> {
  name: string;
  /** Streams and buckets it works with: checked at start-up when it may not create them (MESH_PROVISION=false). */
  needs: MeshNeeds;
  loadConfig(): C;
  start(ctx: ServiceContext<C>): Promise<RunningService>;
}

export async function runService<C extends CommonConfig>(def: ServiceDefinition<C>): Promise<void> {
  let config: C;
  let security: HttpSecurity;
  try {
    config = def.loadConfig();
    security = loadHttpSecurity(config);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${def.name}: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  // Before anything can create a span.
  const telemetry = startTelemetry({ serviceName: def.name, instanceId: config.instance.id, version: MeshVersion });
  const metrics = createMetrics(def.name, { instanceId: config.instance.id, version: MeshVersion });
  const log = createLogger({ service: def.name, instance: config.instance.id }, config.log.level as LogLevel, undefined, () => ({ ...activeTraceIds() }));
  const state = { connected: false, provisioned: false, stopping: false };
  let running: RunningService | undefined;

  const http = new HttpApp().describe({ title: `mesh ${def.name}`, version: MeshVersion, description: `The HTTP API of the mesh's ${def.name} service.` });
  http.onInternalError = (err, id, what) => log.error('internal error answering a request', { id, request: what, error: err, stack: err.stack });
  guardRoutes(http, security);
  security.keys?.watch(log);
  http.route('GET', '/healthz', (_req, res) => sendJson(res, 200, { status: 'ok', service: def.name, instance: config.instance.id }), 'open', {
    summary: 'the process is up (liveness)',
    responses: {
      200: {
        description: 'up',
        content: { 'application/json': { type: 'object', properties: { status: { const: 'ok' }, service: { type: 'string' }, instance: { type: 'string' } } } },
      },
    },
  });
  http.route(
    'GET',
    '/readyz',
    (_req, res) => {
      const checks = { nats: state.connected, provisioned: state.provisioned, ...(running?.readiness() ?? { started: false }), running: !state.stopping };
      const ready = Object.values(checks).every(Boolean);
      sendJson(res, ready ? 200 : 503, { ready, service: def.name, instance: config.instance.id, checks });
    },
    'open',
    {
      summary: 'whether the service does its work now (readiness)',
      description: 'NATS connected, the mesh provisioned, the service started and its own checks (partitions consuming, PostgreSQL reachable, ...).',
      responses: {
        200: { description: 'ready', content: { 'application/json': ReadinessSchema } },
        503: { description: 'not ready; `checks` says which check fails', content: { 'application/json': ReadinessSchema } },
      },
    },
  );
  http.route(
    'GET',
    '/metrics',
    async (_req, res) => {
      const body = await metrics.renderPrometheus();
      res.writeHead(200, { 'content-type': PrometheusContentType, 'content-length': Buffer.byteLength(body) });
      res.end(body);
    },
    security.metricsAccess,
    {
      summary: 'metrics in the Prometheus text format',
      responses: { 200: { description: 'mesh_*, nodejs_* and v8js_* series', content: { [PrometheusContentType]: { type: 'string' } } } },
    },
  );
  let httpPort: number;
  try {
    httpPort = await http.listen(config.http.port, config.http.host, security.tls);
  } catch (err) {
    process.stderr.write(`${def.name}: cannot listen on ${config.http.host}:${config.http.port} (HTTP_PORT): ${(err as Error).message}\n`);
    process.exit(1);
  }
  log.info('http listening', { port: httpPort, tls: security.tls !== undefined, apiKeys: security.keys?.size ?? 'off' });

  // One line on stderr and exit 1: what an operator reads when start-up is refused.
  const refuse = async (err: unknown, nc?: NatsConnection): Promise<never> => {
    state.stopping = true;
    process.stderr.write(`${def.name}: ${redactUrl((err as Error).message)}\n`);
    await nc?.close().catch(() => undefined);
    process.exit(1);
  };
  const natsUrl = redactUrl(config.nats.url);
  log.info('connecting to NATS', { url: natsUrl, as: describeCredentials(config.nats), inbox_prefix: config.nats.inboxPrefix });
  let nc: NatsConnection;
  try {
    nc = await connectNats({
      url: config.nats.url,
      name: `${def.name}:${config.instance.id}`,
      credentials: config.nats,
      inboxPrefix: config.nats.inboxPrefix,
      onWaiting: ({ url, reason, waitedMs }) => log.warn('waiting for NATS', { url, reason, waited_s: Math.round(waitedMs / 1000) }),
    });
  } catch (err) {
    if (err instanceof NatsCredentialsError || err instanceof NatsRefusedError) return refuse(err);
    throw err;
  }
  state.connected = true;
  log.info('connected to NATS', { server: redactUrl(nc.getServer()) });
  // At 0 from the start, so the first violation is an increase an alert sees.
  for (const operation of ['publish', 'subscription']) metrics.natsPermissionViolations.add(0, { operation });
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') state.connected = false;
      if (s.type === 'reconnect') state.connected = true;
      if (s.type === 'disconnect' || s.type === 'reconnect') log.warn(`nats ${s.type}`, { server: 'server' in s ? redactUrl(s.server) : undefined });
      if (s.type === 'error' && s.error instanceof natsErrors.PermissionViolationError) {
        // A missing grant: the operation failed; say which, so the permissions can be fixed.
        const { operation, subject, queue } = s.error;
        log.warn('nats permission violation', { operation, subject, queue });
        metrics.natsPermissionViolations.add(1, { operation });
      }
    }
  })();
  void nc.closed().then((err) => {
    // Closed without our asking: credentials revoked (the client gives up after two refusals), or the like.
    if (state.stopping) return;
    process.stderr.write(`${def.name}: the NATS connection closed${err ? `: ${redactUrl(err.message)}` : ''}\n`);
    process.exit(1);
  });

  const js = jetstream(nc, { timeout: 10_000 });
  try {
    if (config.mesh.provision) {
      await provisionMesh(nc, {
        partitions: config.mesh.partitions,
        replicas: config.mesh.replicas,
        duplicateWindowMs: config.mesh.duplicateWindow,
        leaseTtlMs: config.mesh.leaseTtl,
      });
    } else {
      await verifyMesh(nc, def.needs, config.mesh.partitions);
    }
  } catch (err) {
    log.error(config.mesh.provision ? 'cannot provision the mesh' : 'the mesh is not provisioned', { error: (err as Error).message });
    return refuse(err, nc);
  }
  state.provisioned = true;
  try {
    running = await def.start({ service: def.name, config, log, nc, js, http, httpPort, metrics });
  } catch (err) {
    // A handler that cannot work, a duplicate name, a module that does not load: say which and stop.
    log.error('cannot start', { error: err });
    return refuse(err, nc);
  }
  const described = running.discovery;
  const discovery = startDiscovery(nc, {
    name: def.name,
    version: MeshVersion,
    id: config.instance.id,
    description: described?.description ?? def.name,
    metadata: { http: `${config.http.host}:${httpPort}`, partitions: String(config.mesh.partitions) },
    endpoints: described?.endpoints ?? [],
    stats: () => described?.stats() ?? [],
    onError: (err) => log.warn('service discovery failed', { error: err }),
  });
  log.info('started', { partitions: config.mesh.partitions });

  const shutdown = async (signal: string) => {
    if (state.stopping) return;
    state.stopping = true;
    const timeout = config.shutdown.timeout;
    log.info('shutting down', { signal, timeout_ms: timeout });
    const hardStop = setTimeout(() => {
      log.error('shutdown took too long; exiting', { timeout_ms: timeout });
      process.exit(1);
    }, timeout + 5_000);
    hardStop.unref();
    try {
      await running?.stop(timeout);
      await discovery.stop();
      await nc.drain();
      await http.close();
      security.keys?.close();
      await metrics.shutdown();
      log.info('stopped');
      await telemetry.shutdown();
      process.exit(0);
    } catch (err) {
      log.error('shutdown failed', { error: err });
      process.exit(1);
    }
  };
  // A promise nobody awaited failed: a defect, but the partition fences keep
  // the data safe, so say so loudly and keep serving.
  process.on('unhandledRejection', (err) => log.error('unhandled rejection', { error: err, stack: (err as Error)?.stack }));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

const ReadinessSchema = {
  type: 'object',
  required: ['ready', 'service', 'instance', 'checks'],
  properties: {
    ready: { type: 'boolean' },
    service: { type: 'string' },
    instance: { type: 'string' },
    checks: { type: 'object', additionalProperties: { type: 'boolean' } },
  },
};
