/**
 * `mesh dlq redrive`: put dead letters back where they failed so the stage
 * processes them again (redriveOne in '@mesh/operations' says in which
 * order, and why).
 *
 * `--all` takes the DLQ as it is when it starts (up to its last sequence),
 * so events that fail again while it runs are not redriven in a loop.
 */
import { Streams, type DlqStage } from '@mesh/contracts';
import { checkPartition, dlqFilter, getDeadLetter, readDeadLetters, redriveOne, redriveProblem, type Redriven } from '@mesh/operations';
import type { DlqSelection } from './argv';
import { requireStream, type CommandContext } from './context';
import { CliError } from './errors';

export { redriveOne, redriveProblem } from '@mesh/operations';
export type { Redriven } from '@mesh/operations';

function redrivenLine(r: Redriven): string {
  const where = r.duplicate ? `already stored as ${r.stream} sequence ${r.streamSeq} by an earlier redrive` : `${r.stream} sequence ${r.streamSeq}`;
  return `redrove dead letter ${r.seq} to ${r.subject} (${where}); deleted it from ${Streams.dlq}`;
}

const Page = 256;

async function redriveAll(ctx: CommandContext, o: { stage?: DlqStage; partition?: number }): Promise<void> {
  if (o.partition !== undefined) await checkPartition(ctx, o.partition);
  const upToSeq = (await requireStream(ctx, Streams.dlq)).state.last_seq;
  const filter = dlqFilter(o.stage, o.partition);
  const redriven: Redriven[] = [];
  const refused: { seq: number; problem: string }[] = [];
  let failure: Error | undefined;

  let fromSeq = 1;
  try {
    while (fromSeq <= upToSeq) {
      const { letters } = await readDeadLetters(ctx, { filter, fromSeq, upToSeq, limit: Page });
      if (letters.length === 0) break;
      for (const d of letters) {
        const problem = redriveProblem(d);
        if (problem) {
          refused.push({ seq: d.seq, problem });
          if (!ctx.json) ctx.out.out(`refused dead letter ${d.seq}: ${problem}`);
          continue;
        }
        const r = await redriveOne(ctx, d);
        redriven.push(r);
        if (!ctx.json) ctx.out.out(redrivenLine(r));
      }
      fromSeq = letters[letters.length - 1].seq + 1;
    }
  } catch (err) {
    failure = err as Error;
  }

  if (ctx.json) ctx.out.out(JSON.stringify({ redriven, refused }, null, 2));
  else if (redriven.length + refused.length === 0 && !failure) ctx.out.out('no dead letters to redrive');
  else ctx.out.out(`redrove ${redriven.length}, refused ${refused.length} (refused ones stay in ${Streams.dlq})`);

  if (failure) throw new CliError(`stopped after redriving ${redriven.length}: ${failure.message}`);
  if (refused.length > 0)
    throw new CliError(`refused ${refused.length} dead letter${refused.length === 1 ? '' : 's'}: ${refused.map((r) => r.seq).join(', ')}`);
}

/** Redrive the dead letters given by sequence, in turn; one that fails is reported and the others go on. */
async function redriveEach(ctx: CommandContext, seqs: readonly number[]): Promise<void> {
  const redriven: Redriven[] = [];
  const refused: { seq: number; problem: string }[] = [];
  for (const seq of seqs) {
    try {
      const r = await redriveOne(ctx, await getDeadLetter(ctx, seq));
      redriven.push(r);
      if (!ctx.json) ctx.out.out(redrivenLine(r));
    } catch (err) {
      // One sequence alone fails as it did: with its own error.
      if (seqs.length === 1 || !(err instanceof CliError)) throw err;
      refused.push({ seq, problem: err.message });
      if (!ctx.json) ctx.out.err(err.message);
    }
  }
  if (ctx.json) ctx.out.out(JSON.stringify({ redriven, refused }, null, 2));
  else if (seqs.length > 1) ctx.out.out(`redrove ${redriven.length}, refused ${refused.length} (refused ones stay in ${Streams.dlq})`);
  if (refused.length > 0)
    throw new CliError(`refused ${refused.length} dead letter${refused.length === 1 ? '' : 's'}: ${refused.map((r) => r.seq).join(', ')}`);
}

export async function dlqRedrive(ctx: CommandContext, target: DlqSelection): Promise<void> {
  return 'all' in target ? redriveAll(ctx, target) : redriveEach(ctx, target.seqs);
}
