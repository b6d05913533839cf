/**
 * The stage contract (stage-contract.ts) against the aggregator: its output
 * per key is the `arrivals` aggregation (arrivals.aggregation.js, loaded
 * with MESH_AGGREGATION_MODULES), the `data.seq` of every event it applied
 * in the order it applied them, as stored in mesh_aggregates; the suite
 * also checks the default `totals`. It has no per-key concurrency setting;
 * its concurrency is its partitions, handled at once, and its instances.
 */
import { Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import { aggregateKvKey, Buckets } from '@mesh/contracts';
import { describeStageContract } from './stage-contract';

async function arrivals(natsUrl: string, keys: readonly string[]): Promise<Map<string, number[]>> {
  const nc = await connect({ servers: natsUrl });
  try {
    const kv = await new Kvm(nc).open(Buckets.aggregates);
    const out = new Map<string, number[]>();
    for (const key of keys) {
      const entry = await kv.get(aggregateKvKey('arrivals', key));
      const windows = entry && entry.operation === 'PUT' && entry.length > 0 ? entry.json<{ windows: { seqs: number[] }[] }>().windows : [];
      out.set(
        key,
        windows.flatMap((w) => w.seqs),
      );
    }
    return out;
  } finally {
    await nc.close();
  }
}

describeStageContract({
  stage: 'aggregator',
  specFile: __filename,
  concurrencyEnv: {},
  extraFaultPoints: ['after-checkpoint'],
  readOutput: arrivals,
});
