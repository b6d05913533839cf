/**
 * Redriving one dead letter: put it back where it failed so the stage
 * processes it again.
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
 */
import { headers as natsHeaders } from '@nats-io/nats-core';
import { Headers, Streams, typeMatches } from '@mesh/contracts';
import type { DeadLetterRecord } from './dead-letters';
import { OperationError } from './errors';
import type { MeshContext } from './mesh-context';
import { RedriveHeader, redriveMsgId, StageInputSubjects } from './mesh-names';
import { oneOf, printable } from './printable';

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

async function deleteAfterAck(ctx: MeshContext, d: DeadLetterRecord, stored: string): Promise<void> {
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
  throw new OperationError(
    `dead letter ${d.seq} was republished (${stored}) but could not be deleted from ${Streams.dlq}: ${(failure as Error).message}; ` +
      'redrive it again: within the duplicate window it is not stored twice',
  );
}

/** Redrive one dead letter (see the file comment for the order of effects). */
export async function redriveOne(ctx: MeshContext, d: DeadLetterRecord): Promise<Redriven> {
  const problem = redriveProblem(d);
  if (problem) throw new OperationError(`dead letter ${d.seq} cannot be redriven: ${problem}; it stays in ${Streams.dlq}`);
  const subject = d.originalSubject!;

  const h = natsHeaders();
  h.set(RedriveHeader, String(d.seq));
  h.set(Headers.count, String(d.events!.length));
  let ack;
  try {
    ack = await ctx.js.publish(subject, d.body, { msgID: redriveMsgId(d.seq), headers: h });
  } catch (err) {
    throw new OperationError(`could not republish dead letter ${d.seq} to ${subject}: ${(err as Error).message}; it stays in ${Streams.dlq}`);
  }
  await deleteAfterAck(ctx, d, `${ack.stream} sequence ${ack.seq}`);
  return { seq: d.seq, subject, stream: ack.stream, streamSeq: ack.seq, duplicate: ack.duplicate };
}
