/**
 * Reading what the sink wrote: every key's totals summed over its windows
 * in the PostgreSQL table, and the sink's consumer (what it holds unacked).
 */
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { Buckets, kvStream, SinkConsumer } from '@mesh/contracts';
import type { Totals } from '@mesh/testing';
import type { Pool } from 'pg';

/** Each key's count and sum over all its windows of `totals` in mesh_aggregates, as a plain object in key order. */
export async function tableTotals(pool: Pool, keyPrefix = ''): Promise<Record<string, Totals>> {
  const { rows } = await pool.query(
    `SELECT key, sum((value->>'count')::bigint)::text AS count, sum((value->>'sum')::numeric)::text AS sum
     FROM mesh_aggregates WHERE name = 'totals' AND key LIKE $1 || '%' GROUP BY key ORDER BY key COLLATE "C"`,
    [keyPrefix],
  );
  return Object.fromEntries(rows.map((r) => [r.key as string, { count: Number(r.count), sum: Number(r.sum) }]));
}

/** The sink's durable consumer: updates not yet delivered, and delivered but unacked. */
export async function sinkConsumerState(natsUrl: string): Promise<{ pending: number; ackPending: number }> {
  const nc = await connect({ servers: natsUrl, reconnect: false });
  try {
    const info = await (await jetstreamManager(nc)).consumers.info(kvStream(Buckets.aggregates), SinkConsumer);
    return { pending: info.num_pending, ackPending: info.num_ack_pending };
  } finally {
    await nc.close();
  }
}

/** Expected totals of the events n = 0..count-1 of keyOf(n) with amountOf(n), in key order (as tableTotals gives them). */
export function expectedTotals(count: number, keyOf: (n: number) => string, amountOf: (n: number) => number): Record<string, Totals> {
  const out = new Map<string, Totals>();
  for (let n = 0; n < count; n++) {
    const t = out.get(keyOf(n)) ?? { count: 0, sum: 0 };
    t.count++;
    t.sum += amountOf(n);
    out.set(keyOf(n), t);
  }
  return Object.fromEntries([...out].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
