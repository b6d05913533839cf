/**
 * ingest: takes CloudEvents over HTTP (`POST /v1/events`) and NATS requests
 * (`mesh.in.<type>`), validates them, assigns partitions and stores them in
 * MESH_INGEST as batch envelopes. Stateless: run as many as you like.
 */
import { IngestQueueGroup, ServiceNeeds, Subjects } from '@mesh/contracts';
import { contextFromTraceHeaders } from '@mesh/telemetry';
import { BodyTooLargeError, EndpointStats, readBody, runService, sendError, sendJson, type RunningService, type ServiceContext } from '@mesh/runtime';
import { accept, type AcceptDeps } from './accept';
import { EnvelopeBatcher } from './envelope-batcher';
import { publishEnvelope } from '@mesh/messaging';
import { loadIngestConfig, type IngestConfig } from './config';

/** Queue group: each NATS request is answered by one ingest instance. */
const QUEUE = IngestQueueGroup;

async function start(ctx: ServiceContext<IngestConfig>): Promise<RunningService> {
  const { config, js, nc, http, log } = ctx;
  let connected = true;
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') connected = false;
      if (s.type === 'reconnect') connected = true;
    }
  })();
  const batcher = new EnvelopeBatcher((envelope) => publishEnvelope(js, envelope), {
    partitions: config.mesh.partitions,
    maxEvents: config.envelope.maxEvents,
    maxBytes: config.envelope.maxBytes,
    maxInFlight: 2,
  });
  const deps: AcceptDeps = {
    js,
    batcher,
    log,
    partitions: config.mesh.partitions,
    maxEvents: config.envelope.maxEvents,
    maxBytes: config.envelope.maxBytes,
    isConnected: () => connected,
    maxPayload: () => nc.info?.max_payload ?? 1024 * 1024,
    metrics: ctx.metrics,
  };
  const httpStats = new EndpointStats('http');
  const natsStats = new EndpointStats('events');
  let inFlight = 0;
  let draining = false;

  http.route('POST', '/v1/events', async (req, res) => {
    if (draining) return sendError(res, 503, 'shutting down; retry on another instance', {}, { 'retry-after': '1', connection: 'close' });
    inFlight++;
    try {
      let body: Buffer;
      try {
        body = await readBody(req, config.ingest.maxBodyBytes);
      } catch (err) {
        if (err instanceof BodyTooLargeError) {
          // No `connection: close`: Node reads and discards the rest of the body, so a
          // client still sending it receives this answer instead of a reset.
          return sendError(res, 413, `${err.message} (MESH_MAX_BODY_BYTES); split the events over several requests`, { limit: err.limit });
        }
        return sendError(res, 400, `could not read the request body: ${(err as Error).message}`);
      }
      const started = performance.now();
      const headers = { get: (k: string) => req.headers[k.toLowerCase()] as string | undefined, set: () => undefined };
      const answer = await accept(deps, req.headers['content-type'], body, undefined, contextFromTraceHeaders(headers));
      httpStats.record(1, performance.now() - started, answer.status >= 400 ? 1 : 0, answer.status >= 400 ? String(answer.body.error) : undefined);
      sendJson(res, answer.status, answer.body, answer.headers);
    } finally {
      inFlight--;
    }
  });

  const sub = nc.subscribe(Subjects.inboundAll, {
    queue: QUEUE,
    callback: (err, msg) => {
      if (err) return log.error('inbound subscription failed', { error: err });
      const type = msg.subject.slice(Subjects.inboundPrefix.length);
      inFlight++;
      const started = performance.now();
      const parent = contextFromTraceHeaders(msg.headers ? { get: (k: string) => msg.headers!.get(k), set: () => undefined } : undefined);
      accept(deps, msg.headers?.get('Content-Type') || 'application/cloudevents+json', msg.data, type, parent)
        .then((answer) => {
          natsStats.record(1, performance.now() - started, answer.status >= 400 ? 1 : 0, answer.status >= 400 ? String(answer.body.error) : undefined);
          msg.respond(JSON.stringify({ status: answer.status, ...answer.body }));
        })
        .catch((e: Error) => msg.respond(JSON.stringify({ status: 500, error: e.message })))
        .finally(() => inFlight--);
    },
  });

  return {
    readiness: () => ({ accepting: !draining }),
    discovery: {
      description: 'mesh ingest: takes CloudEvents over HTTP and NATS and stores them in MESH_INGEST',
      endpoints: [
        { name: 'events', subject: Subjects.inboundAll, queueGroup: QUEUE, metadata: { format: 'CloudEvents JSON, batch or NDJSON', http: 'POST /v1/events' } },
      ],
      // The HTTP entry has no subject; its counts ride along in the data of the NATS one.
      stats: () => [natsStats.snapshot({ http: httpStats.snapshot() })],
    },
    async stop(timeoutMs) {
      draining = true;
      await sub.drain();
      const deadline = Date.now() + timeoutMs;
      while (inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    },
  };
}

void runService({
  name: 'ingest',
  needs: ServiceNeeds.ingest,
  loadConfig: () => loadIngestConfig(),
  start,
});
