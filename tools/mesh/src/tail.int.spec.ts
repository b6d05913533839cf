import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { encodeEnvelope, Subjects, type CloudEvent } from '@mesh/contracts';
import { provisionMesh } from '@mesh/messaging';
import { orderEvent, startNatsServer, type NatsServer } from '@mesh/testing';
import { commandContext } from './context';
import { MemoryOutput } from './output';
import { tail } from './tail';

describe('mesh tail (real nats-server)', () => {
  let server: NatsServer;
  let nc: NatsConnection;
  let js: JetStreamClient;

  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connect({ servers: server.url });
    await provisionMesh(nc, { partitions: 4 });
    js = jetstream(nc);
  });
  afterAll(async () => {
    await nc?.close();
    await server?.stop();
  });

  /** Start tailing, wait until it listens, run `send`, and give back what it printed once it stopped. */
  async function tailing(o: Parameters<typeof tail>[1], send: () => Promise<void>, stop?: AbortController): Promise<MemoryOutput> {
    const out = new MemoryOutput();
    const ctx = await commandContext(nc, out, { json: false });
    const running = tail(ctx, o, stop?.signal ?? new AbortController().signal);
    while (out.stderr.length === 0) await new Promise((r) => setTimeout(r, 5));
    await nc.flush();
    await send();
    if (stop) {
      await nc.flush();
      await new Promise((r) => setTimeout(r, 200));
      stop.abort();
    }
    await running;
    return out;
  }

  const at = (e: CloudEvent, time: string) => ({ ...e, time });

  it("prints each event of a stage's output as stored, one line each: time, subject, type, key, id", async () => {
    const a = at(orderEvent('alice', 1, 5), '2026-01-31T12:00:00.000Z');
    const b = at(orderEvent('bob', 2, 7, { type: 'payment.received' }), '2026-01-31T12:00:01.000Z');
    const out = await tailing({ target: 'processor', count: 2 }, async () => {
      await js.publish(Subjects.ingest(1, 'order.created'), encodeEnvelope([orderEvent('not-this-stage', 1, 1)]));
      await js.publish(Subjects.processed(2, 'order.created'), encodeEnvelope([a, b]));
    });
    expect(out.stdout).toEqual([
      '2026-01-31T12:00:00.000Z  mesh.processed.2.order.created  order.created  alice  alice-1',
      '2026-01-31T12:00:01.000Z  mesh.processed.2.order.created  payment.received  bob  bob-2',
    ]);
    expect(out.stderr).toEqual(['tailing mesh.processed.>; Ctrl-C stops']);
  });

  it('keeps only the types --filter matches, on any subject given', async () => {
    const out = await tailing({ target: 'mesh.ingest.*.>', filter: 'payment.*', count: 1 }, async () => {
      await js.publish(Subjects.ingest(0, 'order.created'), encodeEnvelope([at(orderEvent('carol', 1, 1), '2026-01-31T12:00:02.000Z')]));
      await js.publish(
        Subjects.ingest(3, 'payment.received'),
        encodeEnvelope([at(orderEvent('dave', 4, 1, { type: 'payment.received' }), '2026-01-31T12:00:03.000Z')]),
      );
    });
    expect(out.stdout).toEqual(['2026-01-31T12:00:03.000Z  mesh.ingest.3.payment.received  payment.received  dave  dave-4']);
  });

  it("shows an aggregator's closed window as one line with its key, and stops when told to", async () => {
    const stop = new AbortController();
    const out = await tailing(
      { target: 'aggregator' },
      async () => {
        await js.publish(Subjects.aggregates('totals'), JSON.stringify({ name: 'totals', key: 'erin', start: 'a', end: 'b', count: 2, sum: 9 }));
      },
      stop,
    );
    expect(out.stdout).toEqual([
      expect.stringMatching(/^\S+Z {2}mesh\.aggregates\.totals {2}- {2}erin {2}\{"name":"totals","key":"erin","start":"a","end":"b","count":2,"sum":9\}$/),
    ]);
  });
});
