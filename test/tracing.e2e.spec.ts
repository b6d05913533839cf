/**
 * Traces across the mesh as an operator sees them: the four services run as
 * processes exporting OTLP/HTTP JSON (configured only by the standard OTEL_*
 * variables) to a receiver in this test. One event is one trace, from the
 * caller's span through ingest, router, processor and aggregator, each
 * stage's span the child of the one before; a failing handler marks its
 * span ERROR.
 */
import { randomBytes } from 'node:crypto';
import { headers as natsHeaders } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { partitionOf, type CloudEvent } from '@mesh/contracts';
import { eventually, orderEvent, startMesh, startNatsServer, stopAll, type NatsServer, type ServiceName, type ServiceProcess } from '@mesh/testing';
import { FailingEventType, writeFailingHandler, type HandlerModule } from './support/failing-handler';
import { otlpEnv, SpanKind, StatusCode, startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from './support/otlp-receiver';

const PARTITIONS = 16;

/** POST one event as application/cloudevents+json with extra headers; resolves to the status. */
async function postEvent(baseUrl: string, event: CloudEvent, headers: Record<string, string> = {}): Promise<number> {
  const res = await fetch(`${baseUrl}/v1/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/cloudevents+json', ...headers },
    body: JSON.stringify(event),
  });
  await res.text();
  return res.status;
}

function only<T>(items: T[], what: string): T {
  if (items.length !== 1) throw new Error(`expected exactly one ${what}, found ${items.length}: ${JSON.stringify(items, null, 1)}`);
  return items[0];
}

/** The spans of one event in every stage, found by what ties them to it, not by trace id. */
interface EventSpans {
  ingestServer: ReceivedSpan;
  ingestProducer: ReceivedSpan;
  router: ReceivedSpan;
  processor: ReceivedSpan;
  aggregator: ReceivedSpan;
}

describe('tracing across the mesh', () => {
  let server: NatsServer;
  let receiver: OtlpReceiver;
  let handler: HandlerModule;
  let mesh: Record<ServiceName, ServiceProcess> | undefined;

  beforeAll(async () => {
    server = await startNatsServer();
    receiver = await startOtlpReceiver();
    handler = writeFailingHandler();
    mesh = await startMesh(server.url, { ...otlpEnv(receiver.url), MESH_HANDLER_MODULES: handler.path });
  }, 60_000);

  afterAll(async () => {
    if (mesh) await stopAll(Object.values(mesh));
    await server?.stop();
    await receiver?.close();
    handler?.remove();
  }, 60_000);

  const spans = () => receiver.spans();
  const byMessageId = (service: ServiceName, id: string) => spans().filter((s) => s.service === service && s.attributes['messaging.message.id'] === id);
  const childrenOf = (service: ServiceName, parent: ReceivedSpan | string) => {
    const id = typeof parent === 'string' ? parent : parent.spanId;
    return spans().filter((s) => s.service === service && s.parentSpanId === id);
  };

  /**
   * Retries `find` (which throws while something is missing) until it
   * succeeds, then waits a little longer and finds again, so that a span
   * exported twice or a stray span shows up in what is checked. Each service
   * exports on its own schedule, so the spans of one event arrive in any order.
   */
  async function settle<T>(find: () => T, timeoutMs = 20_000): Promise<T> {
    let last: unknown;
    const ok = await eventually(
      async () => {
        try {
          find();
          return true;
        } catch (err) {
          last = err;
          return false;
        }
      },
      timeoutMs,
      100,
    );
    if (!ok) {
      throw new Error(`${(last as Error).message}\n(spans received in all: ${spans().length}; rejected exports: ${JSON.stringify(receiver.rejected)})`);
    }
    await new Promise((r) => setTimeout(r, 500));
    return find();
  }

  /** Each stage's span for `event`, following the chain of parents from the ingest server span; throws while one is missing. */
  function chainFrom(ingestServer: ReceivedSpan, event: CloudEvent): EventSpans {
    const ingestProducer = only(childrenOf('ingest', ingestServer), 'ingest span whose parent is the ingest server span');
    const router = only(childrenOf('router', ingestProducer), 'router span whose parent is the ingest producer span');
    const processor = only(childrenOf('processor', router), 'processor span whose parent is the router span');
    const aggregator = only(childrenOf('aggregator', processor), 'aggregator span whose parent is the processor span');
    // The same spans found by the event instead of by parent: no other span of any stage claims it.
    if (only(byMessageId('router', event.id), `router span for ${event.id}`).spanId !== router.spanId) {
      throw new Error(`the router span for ${event.id} is not the child of its ingest producer span`);
    }
    if (only(byMessageId('processor', event.id), `processor span for ${event.id}`).spanId !== processor.spanId) {
      throw new Error(`the processor span for ${event.id} is not the child of its router span`);
    }
    // The aggregator sees what the orders handler emitted: id `<input id>:orders:0`.
    only(byMessageId('aggregator', `${event.id}:orders:0`), `aggregator span for ${event.id}:orders:0`);
    return { ingestServer, ingestProducer, router, processor, aggregator };
  }

  it("continues the caller's trace through ingest, router, processor and aggregator, each span the child of the stage before", async () => {
    const traceId = randomBytes(16).toString('hex');
    const callerSpanId = randomBytes(8).toString('hex');
    const event = orderEvent('traced-customer', 1, 25);
    expect(await postEvent(mesh!.ingest.url, event, { traceparent: `00-${traceId}-${callerSpanId}-01` })).toBe(202);

    const chain = await settle(() => chainFrom(only(childrenOf('ingest', callerSpanId), 'ingest span whose parent is the caller span'), event));
    const all = Object.values(chain);
    // One trace, the caller's, from one end to the other.
    expect([...new Set(all.map((s) => s.traceId))]).toEqual([traceId]);
    expect(all.map((s) => s.service)).toEqual(['ingest', 'ingest', 'router', 'processor', 'aggregator']);
    expect(
      spans()
        .filter((s) => s.traceId === traceId)
        .map((s) => s.spanId)
        .sort(),
    ).toEqual(all.map((s) => s.spanId).sort());

    expect(chain.ingestServer).toMatchObject({ name: 'POST /v1/events', kind: SpanKind.server, parentSpanId: callerSpanId });
    expect(chain.ingestServer.attributes['http.response.status_code']).toBe('202');
    expect(chain.ingestProducer.kind).toBe(SpanKind.producer);
    for (const s of [chain.router, chain.processor, chain.aggregator]) expect(s.kind).toBe(SpanKind.consumer);
    for (const s of all) expect(s.statusCode).not.toBe(StatusCode.error);

    const p = partitionOf(event.partitionkey!, PARTITIONS);
    const destination = `mesh.ingest.${p}.order.created`;
    expect(chain.ingestProducer.attributes).toMatchObject({
      'messaging.system': 'nats',
      'messaging.destination.name': destination,
      'messaging.destination.partition.id': String(p),
      'messaging.batch.message_count': '1',
    });
    expect(chain.router.name).toBe(`process ${destination}`);
    expect(chain.router.attributes).toMatchObject({
      'messaging.system': 'nats',
      'messaging.destination.name': destination,
      'messaging.message.id': event.id,
      'messaging.destination.partition.id': String(p),
      'messaging.consumer.group.name': `router-p${String(p).padStart(2, '0')}`,
    });
    expect(chain.processor.attributes).toMatchObject({
      'messaging.destination.name': `mesh.routed.processor.${p}.orders`,
      'messaging.message.id': event.id,
      'messaging.destination.partition.id': String(p),
    });
    expect(chain.aggregator.attributes).toMatchObject({
      'messaging.destination.name': `mesh.processed.${p}.order.validated`,
      'messaging.destination.partition.id': String(p),
    });
  }, 40_000);

  it("continues the caller's trace from a traceparent header on a NATS request to mesh.in.<type>", async () => {
    const traceId = randomBytes(16).toString('hex');
    const callerSpanId = randomBytes(8).toString('hex');
    const event = orderEvent('nats-traced-customer', 1, 5);
    const nc = await connect({ servers: server.url });
    try {
      const h = natsHeaders();
      h.set('traceparent', `00-${traceId}-${callerSpanId}-01`);
      const reply = await nc.request('mesh.in.order.created', JSON.stringify(event), { timeout: 10_000, headers: h });
      expect(reply.json<{ status: number }>().status).toBe(202);
    } finally {
      await nc.close();
    }
    const chain = await settle(() => chainFrom(only(childrenOf('ingest', callerSpanId), 'ingest span whose parent is the caller span'), event));
    expect([...new Set(Object.values(chain).map((s) => s.traceId))]).toEqual([traceId]);
  }, 40_000);

  it('starts a new trace for an event posted without a traceparent and carries it through all four services', async () => {
    const event = orderEvent('untraced-customer', 1, 10);
    const before = new Set(spans().map((s) => s.traceId));
    expect(await postEvent(mesh!.ingest.url, event)).toBe(202);

    // The router's span is found by the event id; the ingest server span by following parents back from it.
    const router = await settle(() => only(byMessageId('router', event.id), `router span for ${event.id}`));
    const traceId = router.traceId;
    expect(before.has(traceId)).toBe(false);
    const chain = await settle(() => {
      const producer = only(
        spans().filter((s) => s.spanId === router.parentSpanId),
        'parent of the router span',
      );
      const ingestServer = only(
        spans().filter((s) => s.spanId === producer.parentSpanId),
        'parent of the ingest producer span',
      );
      return chainFrom(ingestServer, event);
    });

    // The ingest server span is the root of a new trace.
    expect(chain.ingestServer).toMatchObject({ service: 'ingest', name: 'POST /v1/events', kind: SpanKind.server, parentSpanId: '' });
    expect([...new Set(Object.values(chain).map((s) => s.traceId))]).toEqual([traceId]);
    expect(traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(traceId).not.toBe('0'.repeat(32));
    // Nothing else in the trace: the five spans of the chain and no strays.
    expect(
      spans()
        .filter((s) => s.traceId === traceId)
        .map((s) => s.spanId)
        .sort(),
    ).toEqual(
      Object.values(chain)
        .map((s) => s.spanId)
        .sort(),
    );
  }, 40_000);

  it('marks the processor span of an event whose handler throws with status ERROR', async () => {
    const event: CloudEvent = { specversion: '1.0', id: 'boom-1', source: 'test://tracing', type: FailingEventType, partitionkey: 'boom-key', data: { n: 1 } };
    expect(await postEvent(mesh!.ingest.url, event)).toBe(202);

    const [span, router] = await settle(() => [
      only(byMessageId('processor', event.id), `processor span for ${event.id}`),
      only(byMessageId('router', event.id), `router span for ${event.id}`),
    ]);
    expect(span.statusCode).toBe(StatusCode.error);
    expect(span.statusMessage).toBe('boom');
    expect(span.attributes['messaging.destination.name']).toBe(`mesh.routed.processor.${partitionOf('boom-key', PARTITIONS)}.boom`);
    // Its parent is the router's span, which did its part without error.
    expect(span.parentSpanId).toBe(router.spanId);
    expect(span.traceId).toBe(router.traceId);
    expect(router.statusCode).not.toBe(StatusCode.error);
  }, 40_000);
});
