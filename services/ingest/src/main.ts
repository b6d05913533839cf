/**
 * ingest: takes CloudEvents over HTTP (`POST /v1/events`) and NATS requests
 * (`mesh.in.<type>`), validates them, assigns partitions and stores them in
 * MESH_INGEST as batch envelopes. Stateless: run as many as you like.
 */
import { IngestQueueGroup, ServiceNeeds, Subjects } from '@mesh/contracts';
import { contextFromTraceHeaders } from '@mesh/telemetry';
import {
  BodyTooLargeError,
  EndpointStats,
  RateLimiter,
  readBody,
  refusedEvents,
  runService,
  sendError,
  sendJson,
  type Caller,
  type RunningService,
  type ServiceContext,
} from '@mesh/runtime';
import { accept, type AcceptAnswer, type AcceptDeps, type Admit } from './accept';
import { forbiddenEvents, InFlightFullError, overloaded, tooManyRequests } from './admission';
import { InFlightBudget, type InFlightTicket } from './in-flight-budget';
import { structuredRequest } from './binary-mode';
import { EnvelopeBatcher } from './envelope-batcher';
import { publishEnvelope } from '@mesh/messaging';
import { loadIngestConfig, type IngestConfig } from './config';

/** Queue group: each NATS request is answered by one ingest instance. */
const QUEUE = IngestQueueGroup;

/** Whose rate limit a request counts against: its API key, or its address while keys are off. */
function clientOf(caller: Caller): string {
  return caller.key ? `key:${caller.key.id}` : `address:${caller.address}`;
}

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
  const budget = new InFlightBudget(config.inFlight.events, config.inFlight.bytes);
  const limiter = new RateLimiter({ eventsPerSecond: config.rateLimit.events, bytesPerSecond: config.rateLimit.bytes, burstMs: config.rateLimit.burst });

  /** Admission once the events are valid: the key's permissions, the events bound, then the rate limit (all or nothing). */
  const admitFor =
    (ticket: InFlightTicket, caller: Caller | undefined, bodyBytes: number, rateHeaders: Record<string, string>): Admit =>
    (events) => {
      if (caller?.key) {
        const refused = refusedEvents(caller.key, events);
        if (refused.length > 0) return forbiddenEvents(caller.key.name, refused);
      }
      if (!ticket.addEvents(events.length)) return overloaded(budget, 'events');
      if (!caller) return undefined;
      const rate = limiter.take(clientOf(caller), events.length, bodyBytes);
      Object.assign(rateHeaders, rate.headers);
      return rate.ok ? undefined : tooManyRequests(rate);
    };
  const reply = (res: Parameters<typeof sendJson>[0], answer: AcceptAnswer) => sendJson(res, answer.status, answer.body, answer.headers);

  http.route(
    'POST',
    '/v1/events',
    async (req, res, _params, caller) => {
      if (draining) return sendError(res, 503, 'shutting down; retry on another instance', {}, { 'retry-after': '1', connection: 'close' });
      // Refuse what can be refused from the headers alone before reading a byte of the body.
      const declared = Number(req.headers['content-length']);
      const known = Number.isFinite(declared) && declared <= config.ingest.maxBodyBytes ? declared : undefined;
      // A request carries at least one event, so an empty events bucket refuses it unread too.
      const early = limiter.check(clientOf(caller), 1, known ?? 0);
      if (!early.ok) return reply(res, tooManyRequests(early));
      const ticket = budget.open();
      inFlight++;
      try {
        if (known !== undefined && !ticket.addBytes(known)) return reply(res, overloaded(budget, 'bytes'));
        let body: Buffer;
        try {
          // Without a content-length the bytes are counted as they arrive.
          body = await readBody(
            req,
            config.ingest.maxBodyBytes,
            known !== undefined ? undefined : (n) => (ticket.addBytes(n) ? undefined : new InFlightFullError()),
          );
        } catch (err) {
          if (err instanceof InFlightFullError) return reply(res, overloaded(budget, 'bytes'));
          if (err instanceof BodyTooLargeError) {
            // No `connection: close`: Node reads and discards the rest of the body, so a
            // client still sending it receives this answer instead of a reset.
            return sendError(res, 413, `${err.message} (MESH_MAX_BODY_BYTES); split the events over several requests`, { limit: err.limit });
          }
          return sendError(res, 400, `could not read the request body: ${(err as Error).message}`);
        }
        const started = performance.now();
        const headers = { get: (k: string) => req.headers[k.toLowerCase()] as string | undefined, set: () => undefined };
        const rateHeaders: Record<string, string> = {};
        const request = structuredRequest(req.headers, body);
        const answer = request.ok
          ? await accept(
              deps,
              request.contentType,
              request.body,
              undefined,
              contextFromTraceHeaders(headers),
              admitFor(ticket, caller, body.length, rateHeaders),
            )
          : request.answer;
        httpStats.record(1, performance.now() - started, answer.status >= 400 ? 1 : 0, answer.status >= 400 ? String(answer.body.error) : undefined);
        sendJson(res, answer.status, answer.body, { ...rateHeaders, ...answer.headers });
      } finally {
        ticket.release();
        inFlight--;
      }
    },
    'ingest',
  );

  const sub = nc.subscribe(Subjects.inboundAll, {
    queue: QUEUE,
    callback: (err, msg) => {
      if (err) return log.error('inbound subscription failed', { error: err });
      const type = msg.subject.slice(Subjects.inboundPrefix.length);
      const ticket = budget.open();
      if (!ticket.addBytes(msg.data.length)) {
        const answer = overloaded(budget, 'bytes');
        msg.respond(JSON.stringify({ status: answer.status, ...answer.body }));
        return;
      }
      inFlight++;
      const started = performance.now();
      const parent = contextFromTraceHeaders(msg.headers ? { get: (k: string) => msg.headers!.get(k), set: () => undefined } : undefined);
      accept(deps, msg.headers?.get('Content-Type') || 'application/cloudevents+json', msg.data, type, parent, admitFor(ticket, undefined, msg.data.length, {}))
        .then((answer) => {
          natsStats.record(1, performance.now() - started, answer.status >= 400 ? 1 : 0, answer.status >= 400 ? String(answer.body.error) : undefined);
          msg.respond(JSON.stringify({ status: answer.status, ...answer.body }));
        })
        .catch((e: Error) => msg.respond(JSON.stringify({ status: 500, error: e.message })))
        .finally(() => {
          ticket.release();
          inFlight--;
        });
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
