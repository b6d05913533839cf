/**
 * Reading what the stages wrote, for fault tests: every event in a stream
 * (an ordered consumer, nothing durable is created), each key's sequence
 * numbers in stream order, and the current owner of a partition's lease.
 */
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import { Buckets, type CloudEvent, type Stage } from '@mesh/contracts';

/** Every event of every envelope in `stream`, in stream order. */
export async function readStreamEvents(natsUrl: string, stream: string): Promise<CloudEvent[]> {
  const nc = await connect({ servers: natsUrl });
  try {
    const jsm = await jetstreamManager(nc);
    const total = (await jsm.streams.info(stream)).state.last_seq;
    const consumer = await jetstream(nc).consumers.get(stream);
    const events: CloudEvent[] = [];
    let last = 0;
    while (last < total) {
      const batch = await consumer.fetch({ max_messages: 500, expires: 2_000 });
      for await (const m of batch) {
        last = m.seq;
        events.push(...m.json<CloudEvent[]>());
      }
    }
    return events;
  } finally {
    await nc.close();
  }
}

/** `data.seq` of each key's events (by `partitionkey`), in the order they appear. */
export function seqsByKey(events: readonly CloudEvent[]): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const e of events) {
    const list = out.get(e.partitionkey!) ?? [];
    list.push((e.data as { seq: number }).seq);
    out.set(e.partitionkey!, list);
  }
  return out;
}

/** Who holds the lease of `partition` of `stage` in mesh_leases now (undefined: nobody). */
export async function leaseOwner(natsUrl: string, stage: Stage, partition: number): Promise<string | undefined> {
  const nc = await connect({ servers: natsUrl });
  try {
    const kv = await new Kvm(nc).open(Buckets.leases);
    const e = await kv.get(`${stage}.${String(partition).padStart(2, '0')}`);
    return e && e.operation === 'PUT' ? e.json<{ owner: string }>().owner : undefined;
  } finally {
    await nc.close();
  }
}
