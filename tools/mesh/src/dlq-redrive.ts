/**
 * `mesh dlq redrive`: put dead letters back where they failed so the stage
 * processes them again.
 *
 * Order of effects, and why:
 * 1. Refuse what cannot be processed again (no original subject, a subject
 *    no stage consumes, a body that is not a batch envelope): redriving it
 *    would only dead-letter it again, or lose it.
 * 2. Publish the body as it is to the original subject with JetStream and
 *    wait for the ack. The message id `redrive:<dlq seq>` makes a second
 *    redrive of the same dead letter (after a crash between 2 and 3, or two
 *    operators at once) a duplicate the stream drops within its window.
 * 3. Delete the dead letter, only after the ack: at worst an event is in
 *    both places, never in neither.
 *
 * `--all` takes the DLQ as it is when it starts (up to its last sequence),
 * so events that fail again while it runs are not redriven in a loop.
 */
import { headers as natsHeaders } from '@nats-io/nats-core';
import { Headers, Streams, typeMatches, type DlqStage } from '@mesh/contracts';
import type { DlqSelection } from './argv';
import { requireStream, type CommandContext } from './context';
import { getDeadLetter, readDeadLetters, type DeadLetterRecord } from './dead-letters';
import { CliError } from './errors';
import { checkPartition } from './mesh-info';
import { dlqFilter, RedriveHeader, redriveMsgId, StageInputSubjects } from './mesh-names';
import { oneOf, printable } from './output';

export interface Redriven {
  /** DLQ sequence of the dead letter (now deleted). */
  seq: number;
  subject: string;
  /** Where the event is stored again. */
  stream: string;
  streamSeq: number;
  /** True when an earlier redrive of this dead letter had stored it already. */
  duplicate: boolean;
}

/** Why a dead letter cannot be redriven, or undefined when it can. */
export function redriveProblem(d: DeadLetterRecord): string | undefined {
  if (!d.originalSubject) return `it has no ${Headers.originalSubject} header, so where it failed is unknown`;
  if (!StageInputSubjects.some((s) => typeMatches(s, d.originalSubject!))) {
    return `its original subject '${printable(d.originalSubject!)}' is not a stage input; accepted: ${oneOf(StageInputSubjects)}`;
  }
  if (d.malformed) return `its body is not a batch envelope (a JSON array of CloudEvents): ${printable(d.malformed)}`;
  return undefined;
}

async function deleteAfterAck(ctx: CommandContext, d: DeadLetterRecord, stored: string): Promise<void> {
  let failure: unknown;
  try {
    if (await ctx.jsm.streams.deleteMessage(Streams.dlq, d.seq, false)) return;
    failure = new Error('the server did not confirm the delete');
  } catch (err) {
    failure = err;
  }
  // Already gone: another redrive of this dead letter finished first.
  const still = await ctx.jsm.streams.getMessage(Streams.dlq, { seq: d.seq }).catch(() => undefined);
  if (still === null) return;
  throw new CliError(
    `dead letter ${d.seq} was republished (${stored}) but could not be deleted from ${Streams.dlq}: ${(failure as Error).message}; ` +
      'redrive it again: within the duplicate window it is not stored twice',
  );
}

/** Redrive one dead letter (see the file comment for the order of effects). */
export async function redriveOne(ctx: CommandContext, d: DeadLetterRecord): Promise<Redriven> {
  const problem = redriveProblem(d);
  if (problem) throw new CliError(`dead letter ${d.seq} cannot be redriven: ${problem}; it stays in ${Streams.dlq}`);
  const subject = d.originalSubject!;

  const h = natsHeaders();
  h.set(RedriveHeader, String(d.seq));
  h.set(Headers.count, String(d.events!.length));
  let ack;
  try {
    ack = await ctx.js.publish(subject, d.body, { msgID: redriveMsgId(d.seq), headers: h });
  } catch (err) {
    throw new CliError(`could not republish dead letter ${d.seq} to ${subject}: ${(err as Error).message}; it stays in ${Streams.dlq}`);
  }
  await deleteAfterAck(ctx, d, `${ack.stream} sequence ${ack.seq}`);
  return { seq: d.seq, subject, stream: ack.stream, streamSeq: ack.seq, duplicate: ack.duplicate };
}

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
