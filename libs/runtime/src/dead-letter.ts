/**
 * Dead letters: one message per failed event on `mesh.dlq.<stage>.<p>`,
 * its body the event (or the raw message when it could not be read), its
 * headers naming the stage, handler, error, attempts and where it came from.
 * The message id is derived from the origin, so dead-lettering twice stores once.
 */
import type { JetStreamClient, PubAck } from '@nats-io/jetstream';
import { headers as natsHeaders } from '@nats-io/nats-core';
import { Headers, Subjects, type DlqStage } from '@mesh/contracts';

export interface DeadLetter {
  stage: DlqStage;
  partition: number;
  handler?: string;
  error: unknown;
  attempts: number;
  originalStream: string;
  originalSubject: string;
  originalSequence: number;
  /** Position of the event in its envelope. */
  index: number;
  payload: Uint8Array;
}

function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, ' ').slice(0, 1024);
}

export function errorKind(err: unknown): string {
  return err instanceof Error ? err.name : typeof err;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export function deadLetter(js: JetStreamClient, d: DeadLetter): Promise<PubAck> {
  const h = natsHeaders();
  h.set(Headers.stage, d.stage);
  if (d.handler) h.set(Headers.handler, d.handler);
  h.set(Headers.error, oneLine(errorMessage(d.error)) || 'unknown error');
  h.set(Headers.errorKind, errorKind(d.error));
  h.set(Headers.attempts, String(d.attempts));
  h.set(Headers.originalStream, d.originalStream);
  h.set(Headers.originalSubject, d.originalSubject);
  h.set(Headers.originalSequence, String(d.originalSequence));
  const msgID = `dlq:${d.stage}:${d.originalStream}:${d.originalSequence}:${d.index}:${d.handler ?? ''}`;
  return js.publish(Subjects.dlq(d.stage, d.partition), d.payload, { msgID, headers: h });
}
