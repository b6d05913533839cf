/**
 * The partition edge against a real nats-server: what an idle partition
 * asks of the server, that a graceful stop ends an idle pull at once, and
 * that no graceful stop loses or reorders a message.
 */
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager, type JsMsg } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { consumerName, stageInput, Subjects } from '@mesh/contracts';
import { eventually, startNatsServer, type NatsServer } from '@mesh/testing';
import type { Subscription } from 'rxjs';
import { partitionMessages } from './partition-messages';
import { preparePartitionConsumer, provisionMesh } from './provision';

const Stage = 'router';
const Stream = stageInput(Stage);
const ConsumerOpts = { maxAckPending: 1_000, ackWaitMs: 30_000 };

describe('partitionMessages (real nats-server)', () => {
  let server: NatsServer;
  let nc: NatsConnection;
  /** A second connection that only watches what the first asks of the server. */
  let watcher: NatsConnection;
  let js: JetStreamClient;
  let jsm: JetStreamManager;
  let partition = 0;
  const subs: Subscription[] = [];

  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connect({ servers: server.url });
    watcher = await connect({ servers: server.url });
    js = jetstream(nc);
    jsm = await jetstreamManager(nc);
    await provisionMesh(nc, { partitions: 8 });
  });
  afterEach(() => {
    for (const s of subs.splice(0)) s.unsubscribe();
  });
  afterAll(async () => {
    await watcher?.close();
    await nc?.close();
    await server?.stop();
  });

  /** A partition of its own for each test, its consumer prepared as an owner does. */
  async function freshPartition(): Promise<{ p: number; consumer: string }> {
    const p = partition++;
    await preparePartitionConsumer(jsm, Stage, p, ConsumerOpts);
    return { p, consumer: consumerName(Stage, p) };
  }

  /** The pull requests (how many messages each asked for) and the consumer info requests sent for `consumer`. */
  async function watchRequests(consumer: string): Promise<{ pulls: number[]; infos: number }> {
    const seen = { pulls: [] as number[], infos: 0 };
    watcher.subscribe(`$JS.API.CONSUMER.MSG.NEXT.${Stream}.${consumer}`, {
      callback: (_, m) => void seen.pulls.push((m.json() as { batch: number }).batch),
    });
    watcher.subscribe(`$JS.API.CONSUMER.INFO.${Stream}.${consumer}`, { callback: () => void seen.infos++ });
    await watcher.flush();
    return seen;
  }

  /** Take and ack the partition's messages until `stop`; `completed` resolves once the Observable completed and every ack was confirmed. */
  function consume(consumer: string, stop: AbortSignal, received: JsMsg[]): { completed: Promise<void> } {
    const acks: Promise<boolean>[] = [];
    const completed = new Promise<void>((resolve, reject) => {
      subs.push(
        partitionMessages(js, Stream, consumer, { stop }).subscribe({
          next: (m) => {
            received.push(m);
            acks.push(m.ackAck());
          },
          complete: resolve,
          error: reject,
        }),
      );
    }).then(async () => {
      // Confirmed acks: the server has applied them before anything looks at the consumer.
      expect(await Promise.all(acks)).not.toContain(false);
    });
    return { completed };
  }

  it('an idle partition sends one pull request per 30 s and no other request; a message ends its wait at once', async () => {
    const { p, consumer } = await freshPartition();
    const seen = await watchRequests(consumer);
    const received: JsMsg[] = [];
    const stop = new AbortController();
    const { completed } = consume(consumer, stop.signal, received);
    // A busy pull (2 s) brings nothing; then an idle pull waits for one message.
    await eventually(async () => seen.pulls.length === 2, 5_000, 10);
    expect(seen.pulls).toEqual([256, 1]);
    // (Looking the consumer up at the start was an info request.)
    const infosBefore = seen.infos;
    // The window measured: with 2 s pulls and an info request after each
    // expiry (the loop before), 5 s idle cost 3 pulls and up to 3 infos.
    await new Promise((r) => setTimeout(r, 5_000));
    expect({ pulls: seen.pulls, infos: seen.infos - infosBefore }).toEqual({ pulls: [256, 1], infos: 0 });

    const sentAt = Date.now();
    await js.publish(Subjects.ingest(p, 'test'), 'wake');
    await eventually(async () => received.length === 1, 5_000, 5);
    expect(Date.now() - sentAt).toBeLessThan(1_000);
    // And the partition is busy again: the next pull asks for a full batch.
    await eventually(async () => seen.pulls.length === 3, 5_000, 5);
    expect(seen.pulls[2]).toBe(256);
    stop.abort();
    await completed;
  }, 30_000);

  it('a graceful stop ends an idle pull at once, and the next owner takes up where it left off', async () => {
    const { p, consumer } = await freshPartition();
    const seen = await watchRequests(consumer);
    const publish = async (from: number, n: number) => {
      for (let i = from; i < from + n; i++) await js.publish(Subjects.ingest(p, 'test'), String(i));
    };
    await publish(0, 5);
    const received: JsMsg[] = [];
    const stop = new AbortController();
    const { completed } = consume(consumer, stop.signal, received);
    await eventually(async () => received.length === 5, 5_000, 10);
    // The busy pull ran out (2 s): the partition waits with an idle pull.
    await eventually(async () => seen.pulls.at(-1) === 1, 5_000, 10);

    const stoppedAt = Date.now();
    stop.abort();
    await completed;
    // An idle pull lasts 30 s; the stop did not wait for it.
    expect(Date.now() - stoppedAt).toBeLessThan(1_000);
    // The server holds no pull request of the stopped owner and nothing unacked.
    const info = await jsm.consumers.info(Stream, consumer);
    expect({ waiting: info.num_waiting, ackPending: info.num_ack_pending, delivered: info.delivered.consumer_seq }).toEqual({
      waiting: 0,
      ackPending: 0,
      delivered: 5,
    });

    // The next owner: nothing to restart, and what comes next arrives in order, first delivery.
    await publish(5, 5);
    const resume = await preparePartitionConsumer(jsm, Stage, p, ConsumerOpts);
    expect(resume.reset).toBe(false);
    const next = new AbortController();
    const more = consume(consumer, next.signal, received);
    await eventually(async () => received.length === 10, 5_000, 10);
    next.abort();
    await more.completed;
    expect(received.map((m) => ({ body: m.string(), deliveries: m.info.deliveryCount }))).toEqual(
      Array.from({ length: 10 }, (_, i) => ({ body: String(i), deliveries: 1 })),
    );
  }, 30_000);

  it('loses and reorders nothing when the owner stops gracefully while messages keep arriving', async () => {
    const { p, consumer } = await freshPartition();
    const total = 2_000;
    let published = 0;
    const publishing = (async () => {
      // In flight a few at a time, so messages arrive throughout the stop.
      while (published < total) {
        const n = Math.min(20, total - published);
        await Promise.all(Array.from({ length: n }, (_, i) => js.publish(Subjects.ingest(p, 'test'), String(published + i))));
        published += n;
      }
    })();
    const received: JsMsg[] = [];
    const stop = new AbortController();
    const first = consume(consumer, stop.signal, received);
    await eventually(async () => received.length >= 300, 10_000, 5);
    stop.abort();
    await first.completed;
    const firstOwner = received.length;
    // A busy pull runs out on a graceful stop: everything it was sent arrived and was acked.
    expect((await jsm.consumers.info(Stream, consumer)).num_ack_pending).toBe(0);
    await publishing;

    // The next owner prepares the consumer (restarting it at its ack floor if anything was left unacked) and takes the rest.
    await preparePartitionConsumer(jsm, Stage, p, ConsumerOpts);
    const next = new AbortController();
    const second = consume(consumer, next.signal, received);
    await eventually(async () => received.length === total, 10_000, 10);
    next.abort();
    await second.completed;
    expect(firstOwner).toBeLessThan(total);
    expect(received.map((m) => Number(m.string()))).toEqual(Array.from({ length: total }, (_, i) => i));
  }, 30_000);
});
