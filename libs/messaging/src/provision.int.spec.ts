import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { Buckets, consumerName, PartitionCountKey, Streams } from '@mesh/contracts';
import { startNatsServer, type NatsServer } from '@mesh/testing';
import { PartitionCountMismatchError } from './errors';
import { ensurePartitionConsumers, provisionMesh } from './provision';

describe('provisionMesh (real nats-server)', () => {
  let server: NatsServer;
  let nc: NatsConnection;

  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connect({ servers: server.url });
  });
  afterAll(async () => {
    await nc?.close();
    await server?.stop();
  });

  it('creates every stream and bucket, and running it again changes nothing', async () => {
    await provisionMesh(nc, { partitions: 4, duplicateWindowMs: 120_000 });
    await provisionMesh(nc, { partitions: 4, duplicateWindowMs: 120_000 });
    const jsm = await jetstreamManager(nc);
    const names: string[] = [];
    for await (const s of jsm.streams.list()) names.push(s.config.name);
    for (const stream of Object.values(Streams)) expect(names).toContain(stream);
    for (const bucket of Object.values(Buckets)) expect(names).toContain(`KV_${bucket}`);
    const ingest = await jsm.streams.info(Streams.ingest);
    expect(ingest.config.duplicate_window).toBe(120_000 * 1_000_000);
    expect(ingest.state.messages).toBe(0);
    const recorded = await (await new Kvm(nc).open(Buckets.checkpoints)).get(PartitionCountKey);
    expect(recorded?.string()).toBe('4');
  });

  it('refuses another partition count than the one recorded, naming both', async () => {
    await expect(provisionMesh(nc, { partitions: 8 })).rejects.toThrow(PartitionCountMismatchError);
    await expect(provisionMesh(nc, { partitions: 8 })).rejects.toThrow(/MESH_PARTITIONS is 8, but this mesh was provisioned with 4/);
  });

  it('creates one durable consumer per partition filtered to that partition', async () => {
    await ensurePartitionConsumers(nc, 'router', 4, { maxAckPending: 50, ackWaitMs: 5_000 });
    await ensurePartitionConsumers(nc, 'router', 4, { maxAckPending: 60, ackWaitMs: 5_000 });
    const jsm = await jetstreamManager(nc);
    for (let p = 0; p < 4; p++) {
      const info = await jsm.consumers.info(Streams.ingest, consumerName('router', p));
      expect(info.config.filter_subject).toBe(`mesh.ingest.${p}.>`);
      expect(info.config.max_ack_pending).toBe(60);
    }
  });
});
