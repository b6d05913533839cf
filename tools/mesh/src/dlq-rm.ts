/**
 * `mesh dlq rm`: discard dead letters an operator has looked at and does not
 * want processed again.
 *
 * It asks nothing, so it says exactly what it did: one line per dead letter
 * removed (its sequence, where it failed, its first event and the error), or
 * the same as JSON. Each is read before it is deleted, so what is printed is
 * what was removed. `--all` takes MESH_DLQ as it is when it starts (up to its
 * last sequence): dead letters that arrive while it runs are kept.
 */
import { Streams, type DlqStage } from '@mesh/contracts';
import type { DlqSelection } from './argv';
import { requireStream, type CommandContext } from './context';
import { CliError } from './errors';
import { checkPartition, dlqFilter, eventLabel, getDeadLetter, readDeadLetters, summaryJson, type DeadLetterRecord } from '@mesh/operations';
import { printable } from './output';

async function remove(ctx: CommandContext, d: DeadLetterRecord): Promise<void> {
  let removed: boolean;
  try {
    removed = await ctx.jsm.streams.deleteMessage(Streams.dlq, d.seq, false);
  } catch (err) {
    throw new CliError(`could not remove dead letter ${d.seq} from ${Streams.dlq}: ${(err as Error).message}`);
  }
  if (!removed) throw new CliError(`could not remove dead letter ${d.seq} from ${Streams.dlq}: the server did not confirm the delete`);
}

function removedLine(d: DeadLetterRecord): string {
  const error = d.error === undefined ? '' : `: ${printable(d.error)}`;
  return `removed dead letter ${d.seq} (${d.subject}, ${printable(eventLabel(d))})${error}`;
}

const Page = 256;

/** The dead letters of `--all`, page by page, as they were when it started. */
async function* everyDeadLetter(ctx: CommandContext, o: { stage?: DlqStage; partition?: number }) {
  if (o.partition !== undefined) await checkPartition(ctx, o.partition);
  const upToSeq = (await requireStream(ctx, Streams.dlq)).state.last_seq;
  const filter = dlqFilter(o.stage, o.partition);
  let fromSeq = 1;
  while (fromSeq <= upToSeq) {
    const { letters } = await readDeadLetters(ctx, { filter, fromSeq, upToSeq, limit: Page });
    if (letters.length === 0) return;
    yield* letters;
    fromSeq = letters[letters.length - 1].seq + 1;
  }
}

export async function dlqRemove(ctx: CommandContext, target: DlqSelection): Promise<void> {
  const removed: DeadLetterRecord[] = [];
  const missing: { seq: number; problem: string }[] = [];
  let failure: Error | undefined;
  try {
    if ('all' in target) {
      for await (const d of everyDeadLetter(ctx, target)) {
        await remove(ctx, d);
        removed.push(d);
        if (!ctx.json) ctx.out.out(removedLine(d));
      }
    } else {
      for (const seq of target.seqs) {
        let d: DeadLetterRecord;
        try {
          d = await getDeadLetter(ctx, seq);
        } catch (err) {
          if (!(err instanceof CliError)) throw err;
          missing.push({ seq, problem: err.message });
          if (!ctx.json) ctx.out.err(err.message);
          continue;
        }
        await remove(ctx, d);
        removed.push(d);
        if (!ctx.json) ctx.out.out(removedLine(d));
      }
    }
  } catch (err) {
    failure = err as Error;
  }

  if (ctx.json) ctx.out.out(JSON.stringify({ removed: removed.map(summaryJson), missing }, null, 2));
  else if (removed.length + missing.length === 0 && !failure) ctx.out.out('no dead letters to remove');
  else ctx.out.out(`removed ${removed.length} dead letter${removed.length === 1 ? '' : 's'} from ${Streams.dlq}`);

  if (failure) throw removed.length === 0 ? failure : new CliError(`stopped after removing ${removed.length}: ${failure.message}`);
  if (missing.length > 0) throw new CliError(`found no dead letter with sequence ${missing.map((m) => m.seq).join(', ')}; list them with 'mesh dlq ls'`);
}
