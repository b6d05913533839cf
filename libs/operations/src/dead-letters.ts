/**
 * Reading MESH_DLQ. One dead letter is one message on `mesh.dlq.<stage>.<p>`:
 * headers name the stage, handler, error, attempts and origin; the body is a
 * batch envelope of the failed event, or the raw bytes of a message that
 * could not be read as one.
 *
 * Listing uses an ordered consumer (ephemeral, in memory, no acks) and
 * single reads use a message get, so reading never creates anything durable
 * and never changes what the stages see.
 */
import { JetStreamApiCodes } from '@nats-io/jetstream';
import type { MsgHdrs } from '@nats-io/nats-core';
import { decodeEnvelope, Headers, MalformedEnvelopeError, Streams, type CloudEvent } from '@mesh/contracts';
import { isNotFound, type MeshContext } from './mesh-context';
import { OperationError } from './errors';
import { dlqSubjectParts } from './mesh-names';

export interface DeadLetterRecord {
  /** Sequence in MESH_DLQ: what `show` and `redrive` take. */
  seq: number;
  time: Date;
  subject: string;
  /** From Mesh-Stage, else from the subject. */
  stage?: string;
  partition?: number;
  handler?: string;
  error?: string;
  errorKind?: string;
  attempts?: number;
  originalStream?: string;
  originalSubject?: string;
  originalSequence?: number;
  headers: Record<string, string[]>;
  body: Uint8Array;
  /** The events, when the body is a batch envelope. */
  events?: CloudEvent[];
  /** Why the body is not a batch envelope. */
  malformed?: string;
}

/** What a JsMsg and a StoredMsg have in common, once their header fields are aligned. */
interface RawMessage {
  seq: number;
  time: Date;
  subject: string;
  headers?: MsgHdrs;
  data: Uint8Array;
}

function decodeBody(body: Uint8Array): { events?: CloudEvent[]; malformed?: string } {
  try {
    const events = decodeEnvelope(body);
    if (events.length === 0) return { malformed: 'an empty JSON array (an envelope carries at least one event)' };
    return { events };
  } catch (err) {
    if (err instanceof MalformedEnvelopeError) return { malformed: err.reason };
    throw err;
  }
}

function whole(text: string | undefined): number | undefined {
  return text !== undefined && /^-?\d+$/.test(text) ? Number(text) : undefined;
}

export function toRecord(m: RawMessage): DeadLetterRecord {
  const headers: Record<string, string[]> = {};
  if (m.headers) for (const [k, v] of m.headers) headers[k] = v;
  const header = (name: string) => (m.headers?.has(name) ? m.headers.get(name) : undefined);
  const fromSubject = dlqSubjectParts(m.subject);
  return {
    seq: m.seq,
    time: m.time,
    subject: m.subject,
    stage: header(Headers.stage) ?? fromSubject.stage,
    partition: fromSubject.partition,
    handler: header(Headers.handler),
    error: header(Headers.error),
    errorKind: header(Headers.errorKind),
    attempts: whole(header(Headers.attempts)),
    originalStream: header(Headers.originalStream),
    originalSubject: header(Headers.originalSubject),
    originalSequence: whole(header(Headers.originalSequence)),
    headers,
    body: m.data,
    ...decodeBody(m.data),
  };
}

function notProvisioned(ctx: MeshContext): OperationError {
  return new OperationError(
    `stream ${Streams.dlq} not found at ${ctx.natsUrl}; the mesh is not provisioned there (every service provisions it when it starts)`,
  );
}

/** One dead letter by its DLQ sequence; an OperationError when there is none. */
export async function getDeadLetter(ctx: MeshContext, seq: number): Promise<DeadLetterRecord> {
  let sm;
  try {
    sm = await ctx.jsm.streams.getMessage(Streams.dlq, { seq });
  } catch (err) {
    if (isNotFound(err, JetStreamApiCodes.StreamNotFound)) throw notProvisioned(ctx);
    throw err;
  }
  if (!sm) throw new OperationError(`no dead letter with sequence ${seq} in ${Streams.dlq}; list them with 'mesh dlq ls'`);
  return toRecord({ seq: sm.seq, time: sm.time, subject: sm.subject, headers: sm.header, data: sm.data });
}

export interface DeadLetterQuery {
  /** Subject filter (see dlqFilter). */
  filter: string;
  /** First DLQ sequence to look at (default 1). */
  fromSeq?: number;
  /** Last DLQ sequence to look at: what was there when a redrive started. */
  upToSeq?: number;
  limit: number;
}

const FetchBatch = 256;
// Only reached when messages vanish between counting and fetching (a concurrent delete).
const FetchExpiresMs = 2_000;

/**
 * Dead letters matching `q`, oldest first, and how many matched from
 * `fromSeq` when reading started (to tell the operator what `limit` left out).
 */
export async function readDeadLetters(ctx: MeshContext, q: DeadLetterQuery): Promise<{ letters: DeadLetterRecord[]; matching: number }> {
  let consumer;
  try {
    consumer = await ctx.js.consumers.get(Streams.dlq, { filter_subjects: q.filter, opt_start_seq: q.fromSeq ?? 1 });
  } catch (err) {
    if (isNotFound(err, JetStreamApiCodes.StreamNotFound)) throw notProvisioned(ctx);
    throw err;
  }
  try {
    // The consumer was created with this count, so an empty selection costs no wait.
    const matching = (await consumer.info(true)).num_pending;
    const letters: DeadLetterRecord[] = [];
    let done = matching === 0;
    while (!done) {
      const batch = await consumer.fetch({ max_messages: Math.min(q.limit - letters.length, FetchBatch), expires: FetchExpiresMs });
      let got = 0;
      for await (const m of batch) {
        got++;
        if (q.upToSeq !== undefined && m.seq > q.upToSeq) {
          done = true;
          break;
        }
        letters.push(toRecord(m));
        if (m.info.pending === 0 || letters.length >= q.limit) {
          done = true;
          break;
        }
      }
      if (got === 0) done = true;
    }
    return { letters, matching };
  } finally {
    await consumer.delete().catch(() => undefined);
  }
}

/** The first event's id, with how many more the envelope carries. */
export function eventLabel(d: DeadLetterRecord): string {
  if (!d.events) return '(malformed)';
  const more = d.events.length > 1 ? ` (+${d.events.length - 1})` : '';
  return `${d.events[0].id}${more}`;
}

/** A dead letter as `--json` prints it in a list. */
export function summaryJson(d: DeadLetterRecord) {
  return {
    seq: d.seq,
    time: d.time.toISOString(),
    subject: d.subject,
    stage: d.stage ?? null,
    partition: d.partition ?? null,
    handler: d.handler ?? null,
    error: d.error ?? null,
    errorKind: d.errorKind ?? null,
    attempts: d.attempts ?? null,
    originalStream: d.originalStream ?? null,
    originalSubject: d.originalSubject ?? null,
    originalSequence: d.originalSequence ?? null,
    events: d.events ? d.events.map((e) => ({ id: e.id, source: e.source, type: e.type })) : null,
    malformed: d.malformed ?? null,
    bytes: d.body.byteLength,
  };
}
