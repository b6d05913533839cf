/** What operations read about the mesh as a whole: its partition count. */
import { JetStreamApiCodes } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { Buckets, PartitionCountKey } from '@mesh/contracts';
import { isNotFound, type MeshContext } from './mesh-context';
import { InvalidRequestError } from './errors';

/** The partition count recorded at provisioning, or undefined when the mesh is not provisioned. */
export async function recordedPartitions(ctx: MeshContext): Promise<number | undefined> {
  try {
    const kv = await new Kvm(ctx.nc).open(Buckets.checkpoints);
    const entry = await kv.get(PartitionCountKey);
    const n = entry && entry.operation === 'PUT' ? Number(entry.string()) : NaN;
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch (err) {
    if (isNotFound(err, JetStreamApiCodes.StreamNotFound)) return undefined;
    throw err;
  }
}

/** A partition given by an operator must exist in this mesh (when the mesh says how many it has). */
export async function checkPartition(ctx: MeshContext, partition: number): Promise<void> {
  const count = await recordedPartitions(ctx);
  if (count !== undefined && partition >= count) {
    throw new InvalidRequestError(`partition ${partition} is out of range; this mesh has ${count} partitions (0 to ${count - 1})`);
  }
}
