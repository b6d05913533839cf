/**
 * `mesh partitions`: for each stage and partition, the durable consumer on
 * the stage's input stream, how far behind it is, and who owns it (read by
 * partitionRows in '@mesh/operations').
 */
import type { Stage } from '@mesh/contracts';
import { partitionRows } from '@mesh/operations';
import type { CommandContext } from './context';
import { formatTable, printable } from './output';

export { partitionRows } from '@mesh/operations';
export type { PartitionRow } from '@mesh/operations';

export async function showPartitions(ctx: CommandContext, o: { stage?: Stage }): Promise<void> {
  const rows = await partitionRows(ctx, o);
  if (ctx.json) {
    ctx.out.out(JSON.stringify({ partitions: rows }, null, 2));
    return;
  }
  const n = (v: number | null) => (v === null ? '-' : String(v));
  const table = rows.map((r) => [
    r.stage,
    String(r.partition),
    r.exists ? `${r.stream}/${r.consumer}` : `${r.stream}/${r.consumer} (missing)`,
    n(r.lag),
    n(r.pending),
    n(r.ackPending),
    n(r.ackFloor),
    n(r.retrying),
    r.owner === null ? '-' : printable(r.owner),
  ]);
  for (const line of formatTable(['STAGE', 'P', 'CONSUMER', 'LAG', 'PENDING', 'ACK PENDING', 'ACK FLOOR', 'RETRYING', 'OWNER'], table)) ctx.out.out(line);

  const totals = [...new Set(rows.map((r) => r.stage))].map((s) => `${s} ${rows.filter((r) => r.stage === s).reduce((sum, r) => sum + (r.lag ?? 0), 0)}`);
  ctx.out.out(`total lag: ${totals.join(', ')}`);
  if (rows.some((r) => !r.exists)) ctx.out.out('(missing: no service of that stage has created the consumer yet)');
}
