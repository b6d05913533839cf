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
  // Refusals as problem details (RFC 9457), with ingest's `problems` and limits as members.
  const reply = (res: Parameters<typeof sendJson>[0], answer: AcceptAnswer, extra: Record<string, string> = {}) => {
    const headers = { ...extra, ...answer.headers };
    if (answer.status < 400) return sendJson(res, answer.status, answer.body, headers);
    const { error, ...members } = answer.body;
    sendError(res, answer.status, String(error), members, headers);
  };

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
        reply(res, answer, rateHeaders);
      } finally {
        ticket.release();
        inFlight--;
      }
    },
    'ingest',
    {
      summary: 'store CloudEvents',
      description:
        'One event (structured mode, `application/cloudevents+json` or `application/json`), a batch (`application/cloudevents-batch+json`), NDJSON (`application/x-ndjson`), or binary mode (attributes as `ce-*` headers, the body as data). 202 means every event is stored in JetStream; a refused request stores nothing.',
      body: {
        content: {
          'application/cloudevents+json': CloudEventSchema,
          'application/cloudevents-batch+json': { type: 'array', items: CloudEventSchema },
          'application/x-ndjson': { type: 'string', description: 'one CloudEvent per line' },
        },
      },
      responses: {
        202: {
          description: 'stored (an event whose source and id were stored before is stored once)',
          content: { 'application/json': { type: 'object', properties: { accepted: { type: 'integer' }, ids: { type: 'array', items: { type: 'string' } } } } },
        },
        400: { description: 'malformed events; `problems` names each event, attribute and problem' },
        401: { description: 'no or a wrong API key (while keys are on)' },
        403: { description: 'the key may not send events of this source or type' },
        413: { description: 'the body is over MESH_MAX_BODY_BYTES' },
        415: { description: 'a content type ingest does not take' },
        429: { description: 'over the rate limit; Retry-After says when to come back' },
        503: { description: 'overloaded or shutting down; retry (Retry-After)' },
      },
    },
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

/** A CloudEvent as ingest takes it (the full rules are in the README: ids, lengths, the partition key). */
const CloudEventSchema = {
  type: 'object',
  required: ['specversion', 'id', 'source', 'type'],
  properties: {
    specversion: { const: '1.0' },
    id: { type: 'string', minLength: 1 },
    source: { type: 'string', minLength: 1 },
    type: { type: 'string', minLength: 1 },
    time: { type: 'string', format: 'date-time' },
    subject: { type: 'string' },
    partitionkey: { type: 'string', description: 'events of one key keep their order; default subject, else source' },
    datacontenttype: { type: 'string' },
    data: {},
  },
  additionalProperties: { description: 'extension attributes' },
};
