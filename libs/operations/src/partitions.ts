/**
 * For each stage and partition: the durable consumer on the stage's input
 * stream, how far behind it is, and who owns it (`mesh partitions`, the
 * console's partitions page).
 *
 * lag = num_pending (not yet delivered) + num_ack_pending (delivered, not
 * acknowledged): everything the partition still has to finish. For a
 * handler service, `retrying` counts envelopes with events waiting for a
 * retry or a host.
 */
import { JetStreamApiCodes, type ConsumerInfo } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { Buckets, consumerName, isHandlerService, PartitionCountKey, retryRecordPrefix, stageInput, type Stage } from '@mesh/contracts';
import { allStages } from './handler-services';
import { OperationError } from './errors';
import { isNotFound, type MeshContext } from './mesh-context';
import { recordedPartitions } from './mesh-info';
import { leaseKeyOf } from './mesh-names';

export interface PartitionRow {
  stage: Stage;
  partition: number;
  stream: string;
  consumer: string;
  /** False until a service of the stage has created the consumer. */
  exists: boolean;
  lag: number | null;
  pending: number | null;
  ackPending: number | null;
  /** Stream sequence of the ack floor: everything at or below it is done. */
  ackFloor: number | null;
  /** Instance holding the partition's lease in mesh_leases. */
  owner: string | null;
  /** Handler services only: envelopes with events waiting for a retry or a host (records in mesh_checkpoints). */
  retrying: number | null;
}

/** Retry records per partition of a handler service, counted from the subjects of the checkpoints bucket. */
async function retryRecords(ctx: MeshContext, service: string, partitions: number): Promise<number[]> {
  const counts = new Array<number>(partitions).fill(0);
  const subject = (key: string) => `$KV.${Buckets.checkpoints}.${key}`;
  for (let p = 0; p < partitions; p++) {
    const info = await ctx.jsm.streams.info(`KV_${Buckets.checkpoints}`, { subjects_filter: subject(`${retryRecordPrefix(p, service)}>`) });
    counts[p] = Object.keys(info.state.subjects ?? {}).length;
  }
  return counts;
}

async function consumersOf(ctx: MeshContext, stream: string): Promise<Map<string, ConsumerInfo>> {
  const byName = new Map<string, ConsumerInfo>();
  try {
    for await (const ci of ctx.jsm.consumers.list(stream)) byName.set(ci.name, ci);
  } catch (err) {
    if (isNotFound(err, JetStreamApiCodes.StreamNotFound)) {
      throw new OperationError(`stream ${stream} not found at ${ctx.natsUrl}; the mesh is not provisioned there (every service provisions it when it starts)`);
    }
    throw err;
  }
  return byName;
}

/** The leases bucket, or undefined when there is none yet. */
async function leasesBucket(ctx: MeshContext): Promise<KV | undefined> {
  const kv = await new Kvm(ctx.nc).open(Buckets.leases);
  try {
    await kv.status();
    return kv;
  } catch (err) {
    if (isNotFound(err, JetStreamApiCodes.StreamNotFound)) return undefined;
    throw err;
  }
}

async function ownerOf(kv: KV | undefined, stage: Stage, partition: number): Promise<string | null> {
  if (!kv) return null;
  const entry = await kv.get(leaseKeyOf(stage, partition));
  if (!entry || entry.operation !== 'PUT') return null;
  try {
    const owner = (entry.json() as { owner?: unknown }).owner;
    if (typeof owner === 'string' && owner !== '') return owner;
  } catch {
    // not JSON: shown as unreadable below
  }
  return `(unreadable lease: ${entry.string().slice(0, 40)})`;
}

/** Run `fn` over `items` with at most `n` at a time, keeping the order of the results. */
async function mapLimited<T, R>(items: readonly T[], n: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
  return results;
}

export async function partitionRows(ctx: MeshContext, o: { stage?: Stage }): Promise<PartitionRow[]> {
  const count = await recordedPartitions(ctx);
  if (count === undefined) {
    throw new OperationError(
      `the mesh at ${ctx.natsUrl} is not provisioned: bucket ${Buckets.checkpoints} has no key ${PartitionCountKey} ` +
        '(every service provisions it when it starts)',
    );
  }
  const leases = await leasesBucket(ctx);
  const stages = o.stage ? [o.stage] : await allStages(ctx);
  const rows: PartitionRow[] = [];
  for (const stage of stages) {
    const retrying = isHandlerService(stage) ? await retryRecords(ctx, stage, count) : [];
    const stream = stageInput(stage);
    const consumers = await consumersOf(ctx, stream);
    for (let p = 0; p < count; p++) {
      const name = consumerName(stage, p);
      const ci = consumers.get(name);
      rows.push({
        stage,
        partition: p,
        stream,
        consumer: name,
        exists: ci !== undefined,
        lag: ci ? ci.num_pending + ci.num_ack_pending : null,
        pending: ci ? ci.num_pending : null,
        ackPending: ci ? ci.num_ack_pending : null,
        ackFloor: ci ? ci.ack_floor.stream_seq : null,
        owner: null,
        retrying: isHandlerService(stage) ? retrying[p] : null,
      });
    }
  }
  const owners = await mapLimited(rows, 32, (r) => ownerOf(leases, r.stage, r.partition));
  rows.forEach((r, i) => (r.owner = owners[i]));
  return rows;
}
