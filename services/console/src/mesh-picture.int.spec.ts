/**
 * The console's picture against a real nats-server, with the instances
 * played by this test (answering `$SRV.STATS` as the services do) and the
 * leases written by it: rates from the counters they report, an instance
 * that stops answering shown down and one that starts shown up, and a
 * partition whose owner dies noted as moving from it to its new owner.
 */
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { NatsConnection, Subscription } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { Buckets, Subjects } from '@mesh/contracts';
import { provisionMesh } from '@mesh/messaging';
import { leaseKeyOf, type MeshContext } from '@mesh/operations';
import { eventually, startNatsServer, type NatsServer } from '@mesh/testing';
import { MeshPictureSource, type MeshPicture } from './mesh-picture';

const REFRESH_MS = 300;

describe('the mesh picture', () => {
  let server: NatsServer;
  let nc: NatsConnection;
  let ctx: MeshContext;
  let source: MeshPictureSource | undefined;
  const answering = new Map<string, Subscription>();

  /** An instance of `name` answering discovery; its counter grows by `perSecond` events a second. */
  const instance = (name: string, id: string, perSecond: number) => {
    const started = Date.now();
    answering.set(
      id,
      nc.subscribe('$SRV.STATS', {
        callback: (_err, msg) => {
          const count = Math.round(((Date.now() - started) * perSecond) / 1000);
          msg.respond(
            JSON.stringify({ name, id, version: '0.1.0', metadata: {}, endpoints: [{ name: 'consume', subject: Subjects.routedAll, num_requests: count }] }),
          );
        },
      }),
    );
  };
  const lease = async (partition: number, owner: string | null) => {
    const kv = await new Kvm(nc).open(Buckets.leases);
    if (owner === null) await kv.delete(leaseKeyOf('processor', partition));
    else await kv.put(leaseKeyOf('processor', partition), JSON.stringify({ owner }));
  };

  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connect({ servers: server.url });
    await provisionMesh(nc, { partitions: 4 });
    ctx = { nc, js: jetstream(nc), jsm: await jetstreamManager(nc), natsUrl: server.url };
  });
  afterEach(() => source?.stop());
  afterAll(async () => {
    for (const s of answering.values()) s.unsubscribe();
    await nc?.close();
    await server?.stop();
  });

  it('shows instances with their rates, marks one that stops answering down, and notes partitions moving from it', async () => {
    let latest: MeshPicture | undefined;
    source = new MeshPictureSource({ ctx, self: 'console', refreshMs: REFRESH_MS, isConnected: () => true });
    source.subscribe((p) => (latest = p));
    instance('processor', 'p-1', 100);
    await lease(0, 'p-1');
    await lease(1, 'p-1');
    source.start();
    const processor = () => latest?.services.find((s) => s.name === 'processor');

    await eventually(async () => (processor()?.inRate ?? 0) > 0, 10_000);
    expect(processor()!.inRate).toBeGreaterThan(90);
    expect(processor()!.inRate).toBeLessThan(110);
    expect(processor()!.instances).toEqual([expect.objectContaining({ id: 'p-1', status: 'up', partitions: [0, 1] })]);
    // The stages with no instance are drawn too, with nothing running.
    expect(latest!.services.map((s) => s.name)).toEqual(['ingest', 'router', 'processor', 'aggregator']);

    instance('processor', 'p-2', 0);
    await eventually(async () => processor()?.instances.some((i) => i.id === 'p-2' && i.status === 'up') ?? false, 5_000);

    answering.get('p-1')!.unsubscribe();
    const stopped = Date.now();
    await eventually(async () => processor()?.instances.find((i) => i.id === 'p-1')?.status === 'down', 5_000);
    expect(Date.now() - stopped).toBeLessThan(REFRESH_MS * 6);

    // Its lease lapses, then another instance takes the partition: one move from p-1 to p-2.
    await lease(0, null);
    await eventually(async () => latest!.partitions!.find((r) => r.stage === 'processor' && r.partition === 0)?.owner === null, 5_000);
    await lease(0, 'p-2');
    await eventually(async () => latest!.moves.some((m) => m.partition === 0 && m.to === 'p-2'), 5_000);
    expect(latest!.moves.filter((m) => m.stage === 'processor' && m.partition === 0).map((m) => [m.from, m.to])).toEqual([
      ['p-1', null],
      ['p-1', 'p-2'],
    ]);
    expect(processor()!.instances.find((i) => i.id === 'p-2')!.partitions).toEqual([0]);
  });

  it('says NATS is away instead of reading, while the connection is down', async () => {
    let latest: MeshPicture | undefined;
    source = new MeshPictureSource({ ctx, self: 'console', refreshMs: REFRESH_MS, isConnected: () => false });
    source.subscribe((p) => (latest = p));
    source.start();
    await eventually(async () => latest !== undefined, 5_000);
    expect(latest!.nats.connected).toBe(false);
    expect(latest!.services).toEqual([]);
    expect(latest!.problems).toEqual([`NATS is not reachable at ${server.url}; the console reconnects and shows the mesh again when it answers`]);
  });
});
