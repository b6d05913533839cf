/**
 * The official CloudEvents SDK (cloudevents 10) as the client of a real mesh:
 * its default emitter (binary content mode), HTTP.binary, HTTP.structured and
 * a batch of its events all get 202 and reach the aggregates; a binary-mode
 * request with a missing attribute gets 400 naming it and stores nothing.
 */
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { CloudEvent, emitterFor, httpTransport, HTTP, type Message } from 'cloudevents';
import { Streams } from '@mesh/contracts';
import { eventually, startMesh, startNatsServer, stopAll, totalsOf, type NatsServer, type ServiceProcess, type ServiceName } from '@mesh/testing';

function order(key: string, n: number, amount: number): CloudEvent<{ orderId: string; amount: number }> {
  return new CloudEvent({ id: `${key}-${n}`, source: 'test://sdk', type: 'order.created', partitionkey: key, data: { orderId: `${key}-${n}`, amount } });
}

async function post(url: string, message: Message): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url, { method: 'POST', headers: message.headers as Record<string, string>, body: message.body as string });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('the CloudEvents SDK as a client', () => {
  let server: NatsServer;
  let mesh: Record<ServiceName, ServiceProcess>;
  let events: string;

  beforeAll(async () => {
    server = await startNatsServer();
    mesh = await startMesh(server.url);
    await Promise.all(Object.values(mesh).map((p) => p.waitReady()));
    events = `${mesh.ingest.url}/v1/events`;
  });
  afterAll(async () => {
    if (mesh) await stopAll(Object.values(mesh));
    await server?.stop();
  });

  async function storedMessages(): Promise<number> {
    const nc = await connect({ servers: server.url });
    try {
      return (await (await jetstreamManager(nc)).streams.info(Streams.ingest)).state.messages;
    } finally {
      await nc.close();
    }
  }

  it('rejects a binary-mode event without ce-source with 400, naming it, and stores nothing', async () => {
    const before = await storedMessages();
    const message = HTTP.binary(order('sdk-bad', 1, 5));
    delete message.headers['ce-source'];
    const answer = await post(events, message);
    expect(answer).toEqual({
      status: 400,
      body: {
        type: 'about:blank',
        title: 'Bad Request',
        status: 400,
        detail: '1 problem(s) in the request; nothing was stored',
        error: '1 problem(s) in the request; nothing was stored',
        problems: [{ index: 0, attribute: 'source', problem: 'is required' }],
      },
    });
    // Nothing else is sent meanwhile: a stored event would show here.
    await new Promise((r) => setTimeout(r, 300));
    expect(await storedMessages()).toBe(before);
  });

  it('accepts binary mode from the default emitter and HTTP.binary, structured mode and a batch, and counts every event', async () => {
    // The default emitter sends binary mode; its transport gives the body, not the status.
    const emit = emitterFor(httpTransport(events));
    const emitted = (await emit(order('sdk-emitter', 1, 10))) as { body: string };
    expect(JSON.parse(emitted.body)).toEqual({ accepted: 1, ids: ['sdk-emitter-1'] });

    const binary = HTTP.binary(order('sdk-binary', 1, 7));
    expect(binary.headers['ce-specversion']).toBe('1.0');
    expect(await post(events, binary)).toEqual({ status: 202, body: { accepted: 1, ids: ['sdk-binary-1'] } });

    const structured = HTTP.structured(order('sdk-structured', 1, 3));
    expect(structured.headers['content-type']).toMatch(/^application\/cloudevents\+json/);
    expect(await post(events, structured)).toEqual({ status: 202, body: { accepted: 1, ids: ['sdk-structured-1'] } });

    const batch = [order('sdk-batch', 1, 1), order('sdk-batch', 2, 2), order('sdk-batch', 3, 4)];
    const res = await fetch(events, { method: 'POST', headers: { 'content-type': 'application/cloudevents-batch+json' }, body: JSON.stringify(batch) });
    expect({ status: res.status, body: await res.json() }).toEqual({ status: 202, body: { accepted: 3, ids: ['sdk-batch-1', 'sdk-batch-2', 'sdk-batch-3'] } });

    const expected = {
      'sdk-emitter': { count: 1, sum: 10 },
      'sdk-binary': { count: 1, sum: 7 },
      'sdk-structured': { count: 1, sum: 3 },
      'sdk-batch': { count: 3, sum: 7 },
    };
    const actual = async () =>
      Object.fromEntries(await Promise.all(Object.keys(expected).map(async (k) => [k, await totalsOf(mesh.aggregator.url, k).catch(() => undefined)])));
    let totals: Record<string, unknown> = {};
    await eventually(async () => JSON.stringify((totals = await actual())) === JSON.stringify(expected), 30_000);
    expect(totals).toEqual(expected);
  });
});
