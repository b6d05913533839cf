/**
 * Creates the mesh's streams, buckets and partition consumers idempotently.
 * Every service runs it at start-up; running it twice, or from several
 * instances at once, changes nothing.
 */
import {
  AckPolicy,
  JetStreamApiCodes,
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiError,
  jetstreamManager,
  ReplayPolicy,
  RetentionPolicy,
  StorageType,
  type ConsumerConfig,
  type JetStreamManager,
  type StreamConfig,
} from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/nats-core';
import { Buckets, consumerName, PartitionCountKey, stageInput, stagePartitionFilter, Streams, Subjects, type Stage, type StreamName } from '@mesh/contracts';
import { MeshNotProvisionedError, PartitionCountMismatchError } from './errors';

export interface ProvisionOptions {
  partitions: number;
  replicas: number;
  duplicateWindowMs: number;
  /** How long data streams keep events (replay horizon). */
  retentionMs: number;
  /** How long dead letters are kept. */
  dlqRetentionMs: number;
  /** TTL of entries in mesh_members and mesh_leases. */
  leaseTtlMs: number;
}

export const defaultProvisionOptions: ProvisionOptions = {
  partitions: 16,
  replicas: 1,
  duplicateWindowMs: 10 * 60_000,
  retentionMs: 7 * 24 * 3_600_000,
  dlqRetentionMs: 14 * 24 * 3_600_000,
  leaseTtlMs: 5_000,
};

const ms = (n: number) => Math.round(n * 1_000_000);

type NamedStreamConfig = Partial<StreamConfig> & { name: string };

function streamConfigs(o: ProvisionOptions): NamedStreamConfig[] {
  const data = (name: string, subject: string): NamedStreamConfig => ({
    name,
    subjects: [subject],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    num_replicas: o.replicas,
    duplicate_window: ms(o.duplicateWindowMs),
    max_age: ms(o.retentionMs),
  });
  return [
    data(Streams.ingest, Subjects.ingestAll),
    data(Streams.routed, Subjects.routedAll),
    data(Streams.processed, Subjects.processedAll),
    data(Streams.aggregates, Subjects.aggregatesAll),
    { ...data(Streams.dlq, Subjects.dlqAll), max_age: ms(o.dlqRetentionMs) },
  ];
}

/** What provisioning did to one stream, bucket or consumer. */
export interface Provisioned {
  kind: 'stream' | 'bucket' | 'consumer' | 'partition count';
  name: string;
  action: 'created' | 'updated' | 'exists';
}

async function ensureStream(jsm: JetStreamManager, config: NamedStreamConfig): Promise<Provisioned['action']> {
  try {
    await jsm.streams.add(config);
    return 'created';
  } catch (err) {
    // Exists with another configuration: bring the updatable fields in line.
    if (err instanceof JetStreamApiError && err.code === 10058) {
      await jsm.streams.update(config.name, config);
      return 'updated';
    }
    throw err;
  }
}

export function partitionConsumerConfig(stage: Stage, partition: number, o: { maxAckPending: number; ackWaitMs: number }): Partial<ConsumerConfig> {
  return {
    durable_name: consumerName(stage, partition),
    filter_subject: stagePartitionFilter(stage, partition),
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    replay_policy: ReplayPolicy.Instant,
    ack_wait: ms(o.ackWaitMs),
    max_ack_pending: o.maxAckPending,
    max_deliver: -1,
  };
}

/**
 * Create (or update) the durable consumers of one stage, one per partition,
 * for tools and tests (`mesh provision --handler-service <name>` creates a
 * handler service's ahead of its first start). Services do not call it: the
 * owner of a partition prepares its consumer itself (preparePartitionConsumer).
 */
export async function ensurePartitionConsumers(
  nc: NatsConnection,
  stage: Stage,
  partitions: number,
  o: { maxAckPending: number; ackWaitMs: number },
): Promise<Provisioned[]> {
  const jsm = await jetstreamManager(nc);
  const stream = stageInput(stage);
  return Promise.all(
    Array.from({ length: partitions }, async (_, p): Promise<Provisioned> => {
      const config = partitionConsumerConfig(stage, p, o);
      const name = config.durable_name!;
      try {
        await jsm.consumers.add(stream, config);
        return { kind: 'consumer', name: `${stream}/${name}`, action: 'created' };
      } catch (err) {
        if (err instanceof JetStreamApiError && err.code === 10148) {
          const { max_ack_pending, ack_wait } = config;
          await jsm.consumers.update(stream, name, { max_ack_pending, ack_wait });
          return { kind: 'consumer', name: `${stream}/${name}`, action: 'updated' };
        }
        throw err;
      }
    }),
  );
}

/**
 * Make one partition's durable consumer ready for a new owner, and return
 * the stream sequence below which everything is acknowledged.
 *
 * Only the lease holder calls this, so nobody else creates, changes or
 * deletes the consumer meanwhile. If messages are still pending (delivered
 * to a previous owner that died, or to a subscription of ours that failed),
 * JetStream would hand them out again only after the ack wait, after newer
 * ones: the partition would be processed out of order and a stage that skips
 * what it has already applied would skip them. So the consumer is recreated
 * to start right after its ack floor, and delivery resumes in stream order.
 * `deliveredUpTo` is the highest sequence the partition handed out before:
 * up to it, a first delivery of the new consumer may be a message seen before.
 */
/**
 * A consumer whose filter is not the stage's partition filter: one of the
 * processor's from before handler services (`mesh.routed.<p>.>`). It is
 * recreated at its ack floor with the new filter.
 */
function filterChanged(current: string | undefined, wanted: string | undefined): boolean {
  return current !== undefined && wanted !== undefined && current !== wanted;
}

export async function preparePartitionConsumer(
  jsm: JetStreamManager,
  stage: Stage,
  partition: number,
  o: { maxAckPending: number; ackWaitMs: number },
): Promise<{ ackFloor: number; reset: boolean; deliveredUpTo: number }> {
  const stream = stageInput(stage);
  const config = partitionConsumerConfig(stage, partition, o);
  const name = config.durable_name!;
  let info;
  try {
    info = await jsm.consumers.info(stream, name);
  } catch (err) {
    if (!(err instanceof JetStreamApiError && err.code === JetStreamApiCodes.ConsumerNotFound)) throw err;
    await jsm.consumers.add(stream, config);
    return { ackFloor: 0, reset: false, deliveredUpTo: 0 };
  }
  const ackFloor = info.ack_floor.stream_seq;
  // Pull requests still waiting belong to an earlier owner (this one has not
  // pulled yet): one that paused without knowing it lost the partition would
  // take some of its messages and hold them until the ack wait, and they
  // would come back out of order. Recreating the consumer drops them.
  // Found by test/frozen-owner.e2e.spec.ts (processor: a key's events out of order).
  if (info.num_ack_pending === 0 && info.num_waiting === 0 && !filterChanged(info.config.filter_subject, config.filter_subject)) {
    if (info.config.max_ack_pending !== config.max_ack_pending || info.config.ack_wait !== config.ack_wait) {
      await jsm.consumers.update(stream, name, { max_ack_pending: config.max_ack_pending, ack_wait: config.ack_wait });
    }
    return { ackFloor, reset: false, deliveredUpTo: ackFloor };
  }
  await jsm.consumers.delete(stream, name);
  await jsm.consumers.add(stream, { ...config, deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: ackFloor + 1 });
  // The new consumer delivers these again with a delivery count of 1.
  return { ackFloor, reset: true, deliveredUpTo: info.delivered.stream_seq };
}

/**
 * Streams, buckets and the recorded partition count. Refuses (throws
 * PartitionCountMismatchError) when the mesh was provisioned with another P.
 * Returns what it did, for `mesh provision` to report.
 */
export async function provisionMesh(nc: NatsConnection, options: Partial<ProvisionOptions> = {}): Promise<Provisioned[]> {
  const o = { ...defaultProvisionOptions, ...options };
  const jsm = await jetstreamManager(nc);
  const done: Provisioned[] = [];
  for (const config of streamConfigs(o)) done.push({ kind: 'stream', name: config.name, action: await ensureStream(jsm, config) });

  const kvm = new Kvm(nc);
  // A bucket that exists already is used as it is (its TTL, say, set by whoever created it).
  const bucket = async (name: string, extra: Record<string, unknown> = {}) => {
    const existed = await streamExists(jsm, `KV_${name}`);
    const kv = await kvm.create(name, { replicas: o.replicas, history: 1, storage: StorageType.File, ...extra }).catch(() => kvm.open(name));
    done.push({ kind: 'bucket', name, action: existed ? 'exists' : 'created' });
    return kv;
  };
  const checkpoints = await bucket(Buckets.checkpoints);
  await bucket(Buckets.aggregates);
  await bucket(Buckets.routes, { history: 5 });
  await bucket(Buckets.members, { ttl: o.leaseTtlMs });
  await bucket(Buckets.leases, { ttl: o.leaseTtlMs });

  try {
    await checkpoints.create(PartitionCountKey, String(o.partitions));
    done.push({ kind: 'partition count', name: String(o.partitions), action: 'created' });
  } catch {
    const recorded = await checkpoints.get(PartitionCountKey);
    const value = recorded ? Number(recorded.string()) : NaN;
    if (value !== o.partitions) throw new PartitionCountMismatchError(o.partitions, value);
    done.push({ kind: 'partition count', name: String(o.partitions), action: 'exists' });
  }
  return done;
}

async function streamExists(jsm: JetStreamManager, name: string): Promise<boolean> {
  try {
    await jsm.streams.info(name);
    return true;
  } catch (err) {
    if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound) return false;
    throw err;
  }
}

/** The streams and buckets one service works with: what it checks when it may not create them. */
export interface MeshNeeds {
  streams: readonly StreamName[];
  buckets: readonly string[];
}

/**
 * For a service started with MESH_PROVISION=false: check, creating nothing,
 * that the streams and buckets it needs exist and that the recorded
 * partition count matches. Throws MeshNotProvisionedError listing all that is
 * missing, or PartitionCountMismatchError.
 */
export async function verifyMesh(nc: NatsConnection, needs: MeshNeeds, partitions: number): Promise<void> {
  const jsm = await jetstreamManager(nc);
  const missing: string[] = [];
  for (const stream of needs.streams) if (!(await streamExists(jsm, stream))) missing.push(`stream ${stream}`);
  const buckets = new Set([...needs.buckets, Buckets.checkpoints]);
  for (const bucket of buckets) if (!(await streamExists(jsm, `KV_${bucket}`))) missing.push(`bucket ${bucket}`);
  if (!missing.includes(`bucket ${Buckets.checkpoints}`)) {
    // A direct get names the key in its subject, so a service's permissions can allow
    // this one key of mesh_checkpoints and no other (a plain get names it only in the body).
    const recorded = await (await new Kvm(nc).open(Buckets.checkpoints, { allow_direct: true })).get(PartitionCountKey);
    if (!recorded || recorded.operation !== 'PUT') missing.push(`the partition count (key ${PartitionCountKey} in ${Buckets.checkpoints})`);
    else if (Number(recorded.string()) !== partitions) throw new PartitionCountMismatchError(partitions, Number(recorded.string()));
  }
  if (missing.length > 0) throw new MeshNotProvisionedError(missing);
}
