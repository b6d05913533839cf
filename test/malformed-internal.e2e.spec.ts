/**
 * Garbage on the mesh's internal subjects, published straight to JetStream
 * past ingest's validation: each stage dead-letters a message that is not a
 * batch envelope (with the problem, where it came from and its raw bytes)
 * and acks it, instead of failing the partition and meeting the message
 * again in a crash loop. The services stay up and ready, and valid events
 * sent afterwards are counted exactly. An envelope for a handler no
 * processor has is dead-lettered naming the handlers there are.
 */
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { encodeEnvelope, encodeIndexedEnvelope, Headers, partitionOf, Streams, Subjects, type Stage } from '@mesh/contracts';
import { headers as natsHeaders } from '@nats-io/nats-core';
import {
  eventually,
  orderEvent,
  postEvents,
  startMesh,
  startNatsServer,
  startService,
  stopAll,
  totalsFor,
  type NatsServer,
  type ServiceName,
  type ServiceProcess,
  type Totals,
} from '@mesh/testing';
import { allAcked, consumingPartitions, deadLetters, partitionConsumers, type DeadLetterMessage } from './support/mesh-state';

/** The default MESH_PARTITIONS. */
const P = 16;
const SERVICES: ServiceName[] = ['ingest', 'router', 'processor', 'aggregator'];

interface Garbage {
  stage: Stage;
  partition: number;
  subject: string;
  what: string;
  payload: Uint8Array;
  /** The whole Mesh-Error header, or its beginning. */
  error: string | RegExp;
}

const targets: { stage: Stage; partition: number; subject: string }[] = [
  { stage: 'router', partition: 3, subject: Subjects.ingest(3, 'order.created') },
  { stage: 'processor', partition: 5, subject: Subjects.routed('processor', 5, 'orders') },
  { stage: 'aggregator', partition: 7, subject: Subjects.processed(7, 'order.validated') },
];

const payloads: { what: string; payload: Uint8Array; error: string | RegExp }[] = [
  { what: 'bytes that are not JSON', payload: Uint8Array.from([0x7b, 0xff, 0x00, 0x6e, 0x6f, 0x74]), error: /^malformed envelope: not JSON \(.+\)$/ },
  {
    what: 'a JSON object',
    payload: Buffer.from(JSON.stringify({ id: 'e1', source: 's', type: 'order.created' })),
    error: 'malformed envelope: expected a JSON array of CloudEvents',
  },
  {
    what: 'an array holding a non-event',
    payload: Buffer.from(JSON.stringify([orderEvent('k', 1, 1), { hello: 'world' }])),
    error: 'malformed envelope: element 1 is not a CloudEvent with string id, source and type',
  },
];

const garbage: Garbage[] = targets.flatMap((t) => payloads.map((p) => ({ ...t, ...p })));

interface Identity {
  pid: number;
  instance: string;
}

async function readyz(p: ServiceProcess): Promise<{ status: number; instance: string }> {
  const res = await fetch(`${p.url}/readyz`);
  const body = (await res.json()) as { instance: string };
  return { status: res.status, instance: body.instance };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('malformed messages on internal subjects', () => {
  let server: NatsServer;
  let mesh: Record<ServiceName, ServiceProcess> | undefined;
  const extra: ServiceProcess[] = [];
  let nc: NatsConnection;
  let js: JetStreamClient;
  let jsm: JetStreamManager;
  const identity = new Map<ServiceName, Identity>();
  const expected = new Map<string, Totals>();

  /** Three order events for each of `perPartition` new keys in every partition (the polluted ones included), recorded in `expected`. */
  async function sendValidEvents(prefix: string, perPartition: number): Promise<void> {
    const keys: string[] = [];
    const covered = new Map<number, number>();
    for (let n = 0; keys.length < perPartition * P; n++) {
      const key = `${prefix}${n}`;
      const p = partitionOf(key, P);
      if ((covered.get(p) ?? 0) >= perPartition) continue;
      covered.set(p, (covered.get(p) ?? 0) + 1);
      keys.push(key);
    }
    const events = keys.flatMap((key) => [1, 2, 3].map((i) => orderEvent(key, i, i * 2)));
    for (const e of events) {
      const t = expected.get(e.partitionkey!) ?? { count: 0, sum: 0 };
      t.count += 1;
      t.sum += (e.data as { amount: number }).amount;
      expected.set(e.partitionkey!, t);
    }
    await postEvents(mesh!.ingest.url, events, 'batch');
  }

  async function expectExactTotals(): Promise<void> {
    const keys = [...expected.keys()];
    const reached = await eventually(
      async () => {
        const now = await totalsFor(mesh!.aggregator.url, keys);
        return keys.every((k) => now[k].count >= expected.get(k)!.count);
      },
      30_000,
      200,
    );
    expect(reached).toBe(true);
    expect(await eventually(async () => allStagesAcked(), 30_000, 100)).toBe(true);
    expect(await totalsFor(mesh!.aggregator.url, keys)).toEqual(Object.fromEntries(expected));
  }

  async function allStagesAcked(): Promise<boolean> {
    const states = await Promise.all((['router', 'processor', 'aggregator'] as const).map((s) => partitionConsumers(jsm, s, P)));
    return states.every(allAcked);
  }

  beforeAll(async () => {
    server = await startNatsServer();
    mesh = await startMesh(server.url);
    nc = await connect({ servers: server.url });
    js = jetstream(nc);
    jsm = await jetstreamManager(nc);
    for (const stage of [mesh.router, mesh.processor, mesh.aggregator]) {
      const owning = await eventually(async () => (await consumingPartitions(stage.url)).length === P, 20_000, 100);
      if (!owning) throw new Error(`${stage.name} did not consume all ${P} partitions within 20 s`);
    }
    for (const name of SERVICES) identity.set(name, { pid: mesh[name].pid, instance: (await readyz(mesh[name])).instance });
  }, 60_000);

  afterAll(async () => {
    await nc?.close();
    if (mesh) await stopAll([...Object.values(mesh), ...extra]);
    await server?.stop();
  }, 60_000);

  it('dead-letters each malformed message at the stage that met it, with the problem, its origin and its raw bytes', async () => {
    const published = await Promise.all(garbage.map(async (g) => ({ g, ack: await js.publish(g.subject, g.payload) })));

    let letters: DeadLetterMessage[] = [];
    const letterOf = (subject: string, seq: number) =>
      letters.find((d) => d.headers[Headers.originalSubject] === subject && d.headers[Headers.originalSequence] === String(seq));
    const all = await eventually(
      async () => {
        letters = await deadLetters(jsm);
        return published.every(({ g, ack }) => letterOf(g.subject, ack.seq) !== undefined);
      },
      20_000,
      100,
    );
    expect(all).toBe(true);

    for (const { g, ack } of published) {
      const letter = letterOf(g.subject, ack.seq)!;
      const context = `${g.what} on ${g.subject}`;
      expect({ context, subject: letter.subject }).toEqual({ context, subject: Subjects.dlq(g.stage, g.partition) });
      expect({ context, headers: letter.headers }).toEqual({
        context,
        headers: expect.objectContaining({
          [Headers.stage]: g.stage,
          [Headers.error]: typeof g.error === 'string' ? g.error : expect.stringMatching(g.error),
          [Headers.errorKind]: 'MalformedEnvelopeError',
          [Headers.attempts]: '1',
          [Headers.originalStream]: ack.stream,
          [Headers.originalSubject]: g.subject,
          [Headers.originalSequence]: String(ack.seq),
        }),
      });
      expect({ context, body: Buffer.from(letter.body).toString('hex') }).toEqual({ context, body: Buffer.from(g.payload).toString('hex') });
    }
    // Each is dead-lettered once: no partition met it twice.
    expect(
      letters.filter((d) =>
        published.some(({ g, ack }) => d.headers[Headers.originalSubject] === g.subject && d.headers[Headers.originalSequence] === String(ack.seq)),
      ),
    ).toHaveLength(garbage.length);
  }, 60_000);

  it('keeps every service up and ready, with no partition failing, and acks the malformed messages', async () => {
    expect(await eventually(async () => allStagesAcked(), 20_000, 100)).toBe(true);
    for (const name of SERVICES) {
      const before = identity.get(name)!;
      expect({ name, alive: isAlive(before.pid), pid: mesh![name].pid }).toEqual({ name, alive: true, pid: before.pid });
      expect({ name, ...(await readyz(mesh![name])) }).toEqual({ name, status: 200, instance: before.instance });
      // A partition that failed on the message would have logged this and met it again.
      expect({
        name,
        failures: mesh![name]
          .output()
          .split('\n')
          .filter((l) => /partition failed|partition stopped on error|unhandled rejection/.test(l)),
      }).toEqual({ name, failures: [] });
    }
    for (const stage of [mesh!.router, mesh!.processor, mesh!.aggregator]) expect(await consumingPartitions(stage.url)).toHaveLength(P);
  }, 30_000);

  it('counts valid events sent afterwards exactly, in the polluted partitions too', async () => {
    await sendValidEvents('after-', 2);
    await expectExactTotals();
  }, 60_000);

  it('dead-letters an envelope for a handler no processor has, naming the handlers there are', async () => {
    const event = orderEvent('lost-key', 1, 9);
    const p = partitionOf('lost-key', P);
    const subject = Subjects.routed('processor', p, 'no-such-handler');
    const ack = await js.publish(subject, Buffer.from(JSON.stringify([event])));

    let letter: DeadLetterMessage | undefined;
    expect(
      await eventually(
        async () => {
          letter = (await deadLetters(jsm)).find((d) => d.headers[Headers.originalSubject] === subject);
          return letter !== undefined;
        },
        20_000,
        100,
      ),
    ).toBe(true);
    expect(letter!.subject).toBe(Subjects.dlq('processor', p));
    expect(letter!.headers).toEqual(
      expect.objectContaining({
        [Headers.stage]: 'processor',
        [Headers.handler]: 'no-such-handler',
        [Headers.error]: "no handler named 'no-such-handler' in this processor; it has: orders, payments-by-customer, fraud-score, shipping-quote",
        [Headers.attempts]: '1',
        [Headers.originalStream]: Streams.routed,
        [Headers.originalSequence]: String(ack.seq),
      }),
    );
    expect(JSON.parse(letter!.text)).toEqual([event]);
    expect(await eventually(async () => allStagesAcked(), 20_000, 100)).toBe(true);
    expect((await totalsFor(mesh!.aggregator.url, ['lost-key']))['lost-key']).toEqual({ count: 0, sum: 0 });
  }, 60_000);

  it('dead-letters at the router an envelope whose index (Mesh-Index) cannot describe its body, naming the problem', async () => {
    const body = encodeEnvelope([orderEvent('index-key', 1, 4)]);
    const { index } = encodeIndexedEnvelope([orderEvent('index-key', 1, 4), orderEvent('index-key', 2, 4)]);
    const cases = [
      { header: '{"types":', error: /^malformed envelope: index \(Mesh-Index header\) is not JSON \(.+\)$/ },
      { header: index, error: /^malformed envelope: index \(Mesh-Index header\) does not match the body: its 2 event\(s\) make \d+ bytes, the body has \d+$/ },
    ];
    const subject = Subjects.ingest(partitionOf('index-key', P), 'order.created');
    const acks = await Promise.all(
      cases.map((c) => {
        const h = natsHeaders();
        h.set(Headers.index, c.header);
        return js.publish(subject, body, { headers: h });
      }),
    );
    let letters: DeadLetterMessage[] = [];
    const letterOf = (seq: number) =>
      letters.find((d) => d.headers[Headers.originalSubject] === subject && d.headers[Headers.originalSequence] === String(seq));
    expect(
      await eventually(
        async () => {
          letters = await deadLetters(jsm);
          return acks.every((a) => letterOf(a.seq) !== undefined);
        },
        20_000,
        100,
      ),
    ).toBe(true);
    cases.forEach((c, i) => {
      const letter = letterOf(acks[i].seq)!;
      expect(letter.subject).toBe(Subjects.dlq('router', partitionOf('index-key', P)));
      expect(letter.headers).toEqual(
        expect.objectContaining({ [Headers.stage]: 'router', [Headers.errorKind]: 'MalformedEnvelopeError', [Headers.error]: expect.stringMatching(c.error) }),
      );
      expect(Buffer.from(letter.body).toString('hex')).toBe(Buffer.from(body).toString('hex'));
    });
    expect(await eventually(async () => allStagesAcked(), 20_000, 100)).toBe(true);
    expect((await totalsFor(mesh!.aggregator.url, ['index-key']))['index-key']).toEqual({ count: 0, sum: 0 });
  }, 60_000);

  it('refuses, at the first stage that parses it, a body that differs from its index; the router forwards it unread', async () => {
    const honest = orderEvent('lying-key', 1, 6);
    const { index } = encodeIndexedEnvelope([honest]);
    // The same length and key, another id: only parsing the body shows it.
    const lying = encodeEnvelope([{ ...honest, id: honest.id.replace(/.$/, (c) => (c === 'X' ? 'Y' : 'X')) }]);
    const h = natsHeaders();
    h.set(Headers.index, index);
    const p = partitionOf('lying-key', P);
    await js.publish(Subjects.ingest(p, 'order.created'), lying, { headers: h });
    let letters: DeadLetterMessage[] = [];
    expect(
      await eventually(
        async () => {
          letters = (await deadLetters(jsm)).filter((d) => d.subject === Subjects.dlq('processor', p) && d.text === Buffer.from(lying).toString());
          return letters.length > 0;
        },
        20_000,
        100,
      ),
    ).toBe(true);
    for (const letter of letters) {
      expect(letter.headers).toEqual(
        expect.objectContaining({
          [Headers.stage]: 'processor',
          [Headers.errorKind]: 'MalformedEnvelopeError',
          [Headers.error]: expect.stringMatching(/^malformed envelope: index \(Mesh-Index header\) does not match the body: event 0 is .+ \(id differs\)$/),
          [Headers.originalStream]: Streams.routed,
        }),
      );
    }
    expect(await eventually(async () => allStagesAcked(), 20_000, 100)).toBe(true);
    expect((await totalsFor(mesh!.aggregator.url, ['lying-key']))['lying-key']).toEqual({ count: 0, sum: 0 });
  }, 60_000);

  it('routes and counts exactly an envelope without an index, as stored before the index existed', async () => {
    const events = [orderEvent('old-format-key', 1, 5), orderEvent('old-format-key', 2, 7)];
    await js.publish(Subjects.ingest(partitionOf('old-format-key', P), 'order.created'), Buffer.from(JSON.stringify(events)));
    expected.set('old-format-key', { count: 2, sum: 12 });
    await expectExactTotals();
  }, 60_000);

  it('lets a new router take over partitions whose stream holds malformed messages, and counts what follows exactly', async () => {
    // The new owner rebuilds its dedup window by reading the stream, garbage included.
    expect(await mesh!.router.stop()).toBe(0);
    const router = await startService('router', { NATS_URL: server.url });
    extra.push(router);
    expect(await eventually(async () => (await consumingPartitions(router.url)).length === P, 20_000, 100)).toBe(true);
    await sendValidEvents('takeover-', 1);
    await expectExactTotals();
    expect(router.output()).not.toMatch(/partition failed|partition stopped on error|unhandled rejection/);
  }, 60_000);
});
