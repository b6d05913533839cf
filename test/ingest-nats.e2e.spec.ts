/**
 * Ingest over NATS requests on `mesh.in.<type>`, with real ingest processes:
 * a bad request is answered with what is wrong and nothing of it is stored;
 * an event without a type takes it from the subject; instances share the
 * subject in a queue group, so each request is answered once and its events
 * stored once; and an instance stopped with SIGTERM answers and stores the
 * requests it had taken before it exits.
 */
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { createInbox, headers as natsHeaders } from '@nats-io/nats-core';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { decodeEnvelope, partitionOf, Streams, Subjects, type CloudEvent } from '@mesh/contracts';
import { orderEvent, startNatsServer, startService, stopAll, type NatsServer, type ServiceProcess } from '@mesh/testing';

const P = 16;

interface Reply {
  status: number;
  error?: string;
  problems?: { index: number; attribute: string; problem: string }[];
  [k: string]: unknown;
}

describe('ingest over NATS (mesh.in.<type>)', () => {
  let server: NatsServer;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  const procs: ServiceProcess[] = [];
  let serial = 0;

  const request = async (subject: string, body: string | Uint8Array, contentType?: string): Promise<Reply> => {
    const h = natsHeaders();
    if (contentType) h.set('Content-Type', contentType);
    const m = await nc.request(subject, body, { timeout: 10_000, headers: contentType ? h : undefined });
    return m.json<Reply>();
  };
  /** Every event stored in MESH_INGEST, with the subject of its envelope, read by sequence. */
  const stored = async (): Promise<{ subject: string; event: CloudEvent }[]> => {
    const { state } = await jsm.streams.info(Streams.ingest);
    const out: { subject: string; event: CloudEvent }[] = [];
    if (state.messages === 0) return out;
    for (let seq = state.first_seq; seq <= state.last_seq; seq++) {
      const m = await jsm.streams.getMessage(Streams.ingest, { seq });
      if (m) for (const event of decodeEnvelope(m.data)) out.push({ subject: m.subject, event });
    }
    return out;
  };
  const storedCount = async () => (await jsm.streams.info(Streams.ingest)).state.messages;
  const fresh = (prefix: string) => orderEvent(`${prefix}-key`, serial++, 1, { id: `${prefix}-${serial}` });

  beforeAll(async () => {
    server = await startNatsServer();
    procs.push(await startService('ingest', { NATS_URL: server.url }));
    nc = await connect({ servers: server.url });
    jsm = await jetstreamManager(nc);
  }, 60_000);
  afterAll(async () => {
    await stopAll(procs);
    await nc?.close();
    await server?.stop();
  }, 60_000);

  it('answers a body that is not JSON with 400 and the parse error, and stores nothing', async () => {
    const before = await storedCount();
    const reply = await request(Subjects.inbound('order.created'), '{"specversion": "1.0", "id": ');
    expect(reply.status).toBe(400);
    expect(reply.error).toMatch(/^the body is not valid JSON: /);
    expect(await storedCount()).toBe(before);
  });

  it('answers a batch with an invalid event with 400 naming the event and attribute, and stores none of the batch', async () => {
    const before = await storedCount();
    const good = fresh('batch-good');
    const { id: _id, ...noId } = fresh('batch-bad');
    const wrongVersion = { ...fresh('batch-bad'), specversion: '0.3' };
    const reply = await request(Subjects.inbound('order.created'), JSON.stringify([good, noId, wrongVersion]), 'application/cloudevents-batch+json');
    expect(reply.status).toBe(400);
    expect(reply.error).toBe('2 problem(s) in the request; nothing was stored');
    expect(reply.problems).toEqual([expect.objectContaining({ index: 1, attribute: 'id' }), expect.objectContaining({ index: 2, attribute: 'specversion' })]);
    expect(await storedCount()).toBe(before);
  });

  it('answers a content type it does not take with 415 saying which it takes, and stores nothing', async () => {
    const before = await storedCount();
    const reply = await request(Subjects.inbound('order.created'), JSON.stringify(fresh('ctype')), 'text/plain');
    expect(reply.status).toBe(415);
    expect(reply.error).toMatch(/^content type "text\/plain" is not accepted; send one of application\/cloudevents\+json/);
    expect(await storedCount()).toBe(before);
  });

  it('gives an event without a type the type of the subject, and leaves the type of one that has its own', async () => {
    const { type: _t, ...untyped } = fresh('typed');
    const own = fresh('typed');
    expect(await request(Subjects.inbound('sensor.reading'), JSON.stringify(untyped))).toMatchObject({ status: 202 });
    expect(await request(Subjects.inbound('sensor.reading'), JSON.stringify(own))).toMatchObject({ status: 202 });
    const p = partitionOf(own.partitionkey!, P);
    const all = await stored();
    expect(all.filter((s) => s.event.id === untyped.id)).toEqual([
      { subject: Subjects.ingest(p, 'sensor.reading'), event: expect.objectContaining({ id: untyped.id, type: 'sensor.reading' }) },
    ]);
    expect(all.filter((s) => s.event.id === own.id)).toEqual([
      { subject: Subjects.ingest(p, 'order.created'), event: expect.objectContaining({ id: own.id, type: 'order.created' }) },
    ]);
  });

  it('answers each request once and stores its events once with two instances in the queue group', async () => {
    procs.push(await startService('ingest', { NATS_URL: server.url }));
    const N = 200;
    const events = Array.from({ length: N }, () => fresh('queue'));
    // Raw requests to an inbox of our own, so a second answer to one request would be seen.
    const inbox = createInbox();
    const replies = new Map<string, Reply[]>();
    const sub = nc.subscribe(`${inbox}.>`, {
      callback: (err, msg) => {
        if (err) return;
        const id = msg.subject.slice(inbox.length + 1);
        replies.set(id, [...(replies.get(id) ?? []), msg.json<Reply>()]);
      },
    });
    for (const e of events) nc.publish(Subjects.inbound('order.created'), JSON.stringify(e), { reply: `${inbox}.${e.id}` });
    await nc.flush();
    for (const deadline = Date.now() + 20_000; replies.size < N && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 50));
    // A second answer would come from the other instance about as fast as the first.
    await new Promise((r) => setTimeout(r, 1_000));
    sub.unsubscribe();

    expect(events.filter((e) => replies.get(e.id)?.length !== 1).map((e) => `${e.id}: ${JSON.stringify(replies.get(e.id) ?? [])}`)).toEqual([]);
    expect(events.filter((e) => replies.get(e.id)![0].status !== 202).map((e) => e.id)).toEqual([]);
    const ids = (await stored()).map((s) => s.event.id).filter((id) => id.startsWith('queue-'));
    expect(ids.sort()).toEqual(events.map((e) => e.id).sort());
  }, 60_000);

  it('answers and stores every request an instance had taken when it is stopped with SIGTERM, while requests keep coming', async () => {
    // Only the instance being stopped: a request it does not take finds no responder at all.
    await stopAll(procs.splice(0));
    const stopping = await startService('ingest', { NATS_URL: server.url });
    procs.push(stopping);
    type Outcome = { kind: 'stored' | 'no responders' | 'failed'; at: number; detail: string };
    const sent: { event: CloudEvent; outcome: Promise<Outcome> }[] = [];
    const send = () => {
      const event = fresh('drain');
      const outcome = nc.request(Subjects.inbound('order.created'), JSON.stringify(event), { timeout: 15_000 }).then(
        (m): Outcome => {
          const r = m.json<Reply>();
          return { kind: r.status === 202 ? 'stored' : 'failed', at: Date.now(), detail: JSON.stringify(r) };
        },
        (err: Error): Outcome => ({ kind: /no responders/i.test(err.message) ? 'no responders' : 'failed', at: Date.now(), detail: err.message }),
      );
      sent.push({ event, outcome });
    };
    // A stream of requests; SIGTERM once 500 have reached the server; more until it has gone.
    let exited = false;
    let takenBeforeStop = 0;
    let stoppedAt = 0;
    let exit: Promise<number | null> | undefined;
    while (!exited && sent.length < 20_000) {
      for (let i = 0; i < 25; i++) send();
      await nc.flush();
      if (!exit && sent.length >= 500) {
        takenBeforeStop = sent.length;
        stoppedAt = Date.now();
        exit = stopping.stop();
        void exit.then(() => (exited = true));
      }
    }
    expect(await exit).toBe(0);
    const outcomes = await Promise.all(sent.map((s) => s.outcome));

    // Whatever had reached the server before the SIGTERM was taken: answered, and stored.
    const before = outcomes.slice(0, takenBeforeStop);
    expect(before.map((o, i) => (o.kind === 'stored' ? undefined : `${sent[i].event.id}: ${o.kind} ${o.detail}`)).filter(Boolean)).toEqual([]);
    // Some of it was still in flight when the signal came: the test did stop a busy instance.
    expect(before.filter((o) => o.at > stoppedAt).length).toBeGreaterThan(0);
    // Later requests were either taken and answered, or found nobody: none was taken and dropped.
    expect(outcomes.filter((o) => o.kind === 'failed').map((o) => o.detail)).toEqual([]);
    const answered = sent.filter((_, i) => outcomes[i].kind === 'stored').map((s) => s.event.id);
    const ids = (await stored()).map((s) => s.event.id).filter((id) => id.startsWith('drain-'));
    expect(ids.sort()).toEqual(answered.sort());
  }, 60_000);
});
