/**
 * The schema pieces every service shares. A service's `config.ts` spreads
 * the pieces it needs and adds its own keys; each key has a doc, a format,
 * a default and an env variable.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';

export function generatedInstanceId(service: string): string {
  const host =
    hostname()
      .replace(/[^A-Za-z0-9_-]/g, '')
      .slice(0, 24) || 'host';
  return `${service}-${host}-${process.pid}-${randomBytes(2).toString('hex')}`;
}

/**
 * Where NATS is and who this process is to it. Secrets may be given as
 * files (`*_FILE`, a mounted Kubernetes Secret); `sensitive` keeps the
 * inline ones out of any config dump. A service passes its private inbox
 * prefix (`serviceInboxPrefix` of @mesh/contracts) so permissions can scope
 * its replies.
 */
export function natsSchema(inboxPrefix = '_INBOX') {
  const file = (doc: string, env: string) => ({ doc, format: String, default: '', env });
  return {
    url: {
      doc: 'NATS server URL(s), comma-separated.',
      format: 'nats-urls',
      default: 'nats://127.0.0.1:4222',
      env: 'NATS_URL',
    },
    user: { doc: 'NATS user name (with NATS_PASSWORD or NATS_PASSWORD_FILE).', format: String, default: '', env: 'NATS_USER' },
    password: { doc: 'NATS password of NATS_USER (prefer NATS_PASSWORD_FILE).', format: String, default: '', env: 'NATS_PASSWORD', sensitive: true },
    passwordFile: file('File holding the NATS password of NATS_USER.', 'NATS_PASSWORD_FILE'),
    token: { doc: 'NATS authentication token (prefer NATS_TOKEN_FILE).', format: String, default: '', env: 'NATS_TOKEN', sensitive: true },
    tokenFile: file('File holding the NATS authentication token.', 'NATS_TOKEN_FILE'),
    nkeySeedFile: file('File holding the nkey user seed (SU...) to authenticate with.', 'NATS_NKEY_SEED_FILE'),
    creds: file('NATS .creds file (user JWT and nkey seed) to authenticate with.', 'NATS_CREDS'),
    tlsCa: file('CA certificate(s) to verify the NATS server with; setting it turns TLS on.', 'NATS_TLS_CA'),
    tlsCert: file('Client certificate for mutual TLS with NATS (with NATS_TLS_KEY).', 'NATS_TLS_CERT'),
    tlsKey: file('Private key of NATS_TLS_CERT.', 'NATS_TLS_KEY'),
    inboxPrefix: {
      doc: "Prefix of this process's reply subjects; a private prefix per service lets NATS permissions scope replies.",
      format: 'subject-prefix',
      default: inboxPrefix,
      env: 'NATS_INBOX_PREFIX',
    },
  };
}

export function httpSchema(defaultPort: number) {
  return {
    port: { doc: 'HTTP port for the API, health and metrics (0 picks a free port).', format: 'tcp-port', default: defaultPort, env: 'HTTP_PORT' },
    host: { doc: 'Address the HTTP server listens on.', format: String, default: '0.0.0.0', env: 'HTTP_HOST' },
  };
}

export function meshSchema() {
  return {
    partitions: {
      doc: 'Partition count P, fixed when the streams are created; every instance must agree.',
      format: 'partitions',
      default: 16,
      env: 'MESH_PARTITIONS',
    },
    replicas: { doc: 'Stream and bucket replicas (1 locally, 3 on a cluster).', format: 'replicas', default: 1, env: 'MESH_REPLICAS' },
    duplicateWindow: {
      doc: 'How long a stream remembers message ids, and how long the router remembers event ids, to drop duplicates.',
      format: 'duration',
      default: '10m',
      env: 'MESH_DUPLICATE_WINDOW',
    },
    provision: {
      doc: 'Create or update streams and buckets at start-up (true), or only check they exist and exit if not (false: run `mesh provision` with admin credentials).',
      format: 'boolean',
      default: true,
      env: 'MESH_PROVISION',
    },
    leaseTtl: {
      doc: "Lifetime of a member registration and a partition lease; a dead instance's partitions move after it.",
      format: 'duration',
      default: '5s',
      env: 'MESH_LEASE_TTL',
    },
  };
}

export function instanceSchema(service: string) {
  return {
    id: {
      doc: 'Unique id of this instance (generated when not given).',
      format: 'instance-id',
      default: generatedInstanceId(service),
      env: 'MESH_INSTANCE_ID',
    },
  };
}

export function logSchema() {
  return {
    level: { doc: 'Log level.', format: ['debug', 'info', 'warn', 'error'], default: 'info', env: 'LOG_LEVEL' },
  };
}

export function shutdownSchema() {
  return {
    timeout: {
      doc: 'Longest a graceful shutdown (SIGTERM) waits for in-flight work before exiting.',
      format: 'duration',
      default: '15s',
      env: 'MESH_SHUTDOWN_TIMEOUT',
    },
  };
}

/** Pieces of a stage that consumes a stream partition by partition. */
export function consumerSchema() {
  return {
    maxAckPending: {
      doc: 'Messages (batch envelopes) a partition consumer may have unacknowledged; bounds memory per partition.',
      format: 'positive-int',
      default: 32,
      env: 'MESH_MAX_ACK_PENDING',
    },
    ackWait: { doc: 'How long JetStream waits for an ack before redelivering.', format: 'duration', default: '30s', env: 'MESH_ACK_WAIT' },
    batchMessages: {
      doc: 'Most input messages a partition handles in one step (one checkpoint, one round of acks).',
      format: 'positive-int',
      default: 16,
      env: 'MESH_BATCH_MESSAGES',
    },
  };
}

export function envelopeSchema() {
  return {
    maxEvents: { doc: 'Most events in one batch envelope.', format: 'positive-int', default: 500, env: 'MESH_ENVELOPE_MAX_EVENTS' },
    maxBytes: {
      doc: 'Largest batch envelope in bytes (keep below the server max_payload).',
      format: 'positive-int',
      default: 512 * 1024,
      env: 'MESH_ENVELOPE_MAX_BYTES',
    },
  };
}

export function ingestSchema() {
  return {
    maxBodyBytes: {
      doc: 'Largest request body POST /v1/events accepts (larger gets 413).',
      format: 'positive-int',
      default: 1024 * 1024,
      env: 'MESH_MAX_BODY_BYTES',
    },
  };
}

/**
 * API keys on every HTTP API (`/v1/...`). Off while no file is named; the
 * file is written by `mesh apikey create` and reloaded when it changes.
 */
export function apiKeysSchema() {
  return {
    file: {
      doc: 'Path of the API key file (written by `mesh apikey create`); when set, every /v1 endpoint needs `Authorization: Bearer <key>`. Empty: keys off.',
      format: String,
      default: '',
      env: 'MESH_API_KEYS_FILE',
    },
    metricsAuth: {
      doc: 'Whether /metrics is open to anyone or needs a key with the admin scope (only while API keys are on).',
      format: ['open', 'admin'],
      default: 'open',
      env: 'MESH_METRICS_AUTH',
    },
  };
}

/** HTTPS on the service's listener: both files or neither. */
export function httpTlsSchema() {
  return {
    cert: { doc: 'PEM certificate (chain) file for HTTPS; give it with HTTP_TLS_KEY. Empty: plain HTTP.', format: String, default: '', env: 'HTTP_TLS_CERT' },
    key: { doc: 'PEM private key file for HTTPS; give it with HTTP_TLS_CERT. Empty: plain HTTP.', format: String, default: '', env: 'HTTP_TLS_KEY' },
  };
}

/** Token buckets on ingest's POST /v1/events, per API key (per client address while keys are off). */
export function rateLimitSchema() {
  return {
    events: {
      doc: 'Events per second one API key (or client address) may send to POST /v1/events; 0: no limit.',
      format: 'non-negative-int',
      default: 0,
      env: 'MESH_RATE_LIMIT_EVENTS',
    },
    bytes: {
      doc: 'Request body bytes per second one API key (or client address) may send to POST /v1/events; 0: no limit.',
      format: 'non-negative-int',
      default: 0,
      env: 'MESH_RATE_LIMIT_BYTES',
    },
    burst: {
      doc: 'How much of the rate a quiet client may spend at once, as a time: the bucket holds rate x burst.',
      format: 'positive-duration',
      default: '1s',
      env: 'MESH_RATE_LIMIT_BURST',
    },
  };
}

/** What ingest holds accepted but not yet stored; past it a request gets 503 at once instead of memory. */
export function inFlightSchema() {
  return {
    events: {
      doc: 'Events ingest holds in flight (received, not yet stored in JetStream) before it answers 503.',
      format: 'positive-int',
      default: 20_000,
      env: 'MESH_MAX_IN_FLIGHT_EVENTS',
    },
    bytes: {
      doc: 'Request body bytes ingest holds in flight (being read or not yet stored) before it answers 503.',
      format: 'positive-int',
      default: 16 * 1024 * 1024,
      env: 'MESH_MAX_IN_FLIGHT_BYTES',
    },
  };
}

export function processorSchema() {
  return {
    handlerModules: {
      doc: 'Extra handler modules to load (comma-separated paths of JS files whose default export is a handler definition or a list of them).',
      format: String,
      default: '',
      env: 'MESH_HANDLER_MODULES',
    },
    keyConcurrency: {
      doc: 'Keys of one partition a processor works on at once (one key stays in order).',
      format: 'positive-int',
      default: 64,
      env: 'MESH_KEY_CONCURRENCY',
    },
  };
}

export function aggregatorSchema() {
  return {
    allowedLateness: {
      doc: 'Default time after a window ends during which late events still count (an aggregation may set its own).',
      format: 'duration',
      default: '1m',
      env: 'MESH_ALLOWED_LATENESS',
    },
    retainWindows: {
      doc: 'Closed windows kept per key in the query results.',
      format: 'positive-int',
      default: 60,
      env: 'MESH_RETAIN_WINDOWS',
    },
    stateRetention: {
      doc: 'Event time a key is kept after its last window closed: a key whose windows have all closed and whose last window ended more than this before the watermark is dropped from memory and from the checkpoint (its final result stays in KV mesh_aggregates).',
      format: 'duration',
      default: '24h',
      env: 'MESH_STATE_RETENTION',
    },
    updatesHeartbeat: {
      doc: 'How often GET /v1/aggregates/:name/:key/events sends a comment line while no update comes, so proxies and clients see the stream is alive.',
      format: 'positive-duration',
      default: '15s',
      env: 'MESH_UPDATES_HEARTBEAT',
    },
    aggregationModules: {
      doc: 'Extra aggregation modules to load (comma-separated paths of JS files whose default export is an aggregation definition or a list of them).',
      format: String,
      default: '',
      env: 'MESH_AGGREGATION_MODULES',
    },
  };
}

/** The sink: where PostgreSQL is, and how it batches and retries its writes. */
export function sinkSchema() {
  return {
    postgresUrl: {
      doc: 'PostgreSQL connection URL the sink writes results to (postgres://user:password@host:5432/db); required.',
      format: 'postgres-url',
      default: '',
      env: 'MESH_SINK_POSTGRES_URL',
      // It may hold a password: never shown in an error or a log line.
      sensitive: true,
    },
    batchSize: {
      doc: 'Most result updates (KV writes of the aggregator) written to PostgreSQL in one transaction.',
      format: 'positive-int',
      default: 500,
      env: 'MESH_SINK_BATCH_SIZE',
    },
    flushInterval: {
      doc: 'Longest an update waits for its batch to fill before it is written.',
      format: 'positive-duration',
      default: '200ms',
      env: 'MESH_SINK_FLUSH_INTERVAL',
    },
    retryMin: {
      doc: 'First wait before retrying a write PostgreSQL refused or could not take (doubles per attempt).',
      format: 'positive-duration',
      default: '250ms',
      env: 'MESH_SINK_RETRY_MIN',
    },
    retryMax: {
      doc: 'Longest wait between retries of a write while PostgreSQL is away.',
      format: 'positive-duration',
      default: '5s',
      env: 'MESH_SINK_RETRY_MAX',
    },
    poolSize: {
      doc: "Connections in the sink's PostgreSQL pool.",
      format: 'positive-int',
      default: 4,
      env: 'MESH_SINK_POOL_SIZE',
    },
  };
}

/**
 * Fault points a test arms to kill or freeze a stage process at an exact
 * place (`<point>[:<n>][:kill|stop]`, the n-th time it is reached). The names live
 * here so that config can reject a misspelt one at start-up; the runtime's
 * `faultPoint()` places them.
 */
export const FaultPointNames = [
  /** The worker resolved (outputs stored, state checkpointed); the batch's inputs are not acked yet. */
  'before-ack',
  /** A batch was acked (one commit done) and the next one of the partition, already received, is about to be handled. */
  'between-commits',
  /** A partition was just taken (lease created, consumer prepared, state loaded) and is not consumed yet. */
  'handover',
  /** Aggregator: the checkpoint of a batch is written; its results in mesh_aggregates are not. */
  'after-checkpoint',
  /** Processor: a batch's outputs are stored; the handler state it changed is not committed. */
  'before-state-commit',
] as const;

/** Test only: never set in production, where the default (empty) turns every fault point into a no-op. */
export function faultSchema() {
  return {
    point: {
      doc: `TEST ONLY. Kill (SIGKILL) or freeze (SIGSTOP, until a SIGCONT) this process when it reaches a fault point, to test recovery at an exact place: '<point>[:<n>][:kill|stop]' (the n-th time; kill by default), point one of ${FaultPointNames.join(', ')}. Empty: off.`,
      format: 'fault-point',
      default: '',
      env: 'MESH_TEST_FAULT',
    },
  };
}

export function consoleSchema() {
  return {
    refreshInterval: {
      doc: 'How often the console reads the mesh (discovery, streams, consumers, leases) and pushes a new picture to open pages.',
      format: 'positive-duration',
      default: '1s',
      env: 'MESH_CONSOLE_REFRESH',
    },
    metricsKey: {
      doc: "API key the console sends when it reads the services' /metrics (needed only when they run with MESH_METRICS_AUTH=admin).",
      format: String,
      default: '',
      env: 'MESH_CONSOLE_METRICS_KEY',
      sensitive: true,
    },
  };
}

/** Every env variable of every service, so a shared environment never trips the unknown-variable check. */
export function knownEnvNames(): Set<string> {
  const names = new Set<string>();
  const pieces: Record<string, unknown>[] = [
    natsSchema(),
    httpSchema(0),
    meshSchema(),
    instanceSchema('x'),
    logSchema(),
    shutdownSchema(),
    consumerSchema(),
    envelopeSchema(),
    ingestSchema(),
    processorSchema(),
    aggregatorSchema(),
    sinkSchema(),
    consoleSchema(),
    apiKeysSchema(),
    httpTlsSchema(),
    rateLimitSchema(),
    inFlightSchema(),
    faultSchema(),
  ];
  for (const piece of pieces) {
    for (const spec of Object.values(piece)) {
      const env = (spec as { env?: string }).env;
      if (env) names.add(env);
    }
  }
  return names;
}
