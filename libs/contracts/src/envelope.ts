/**
 * Batch envelopes: one JetStream message carries 1..N events of one partition,
 * as a JSON array. Ids, acks, retries and dead letters stay per event: each
 * event keeps its own `source` + `id`, and a stage derives the message id of
 * what it publishes from its input (stage, input sequence, position), so a
 * redelivered input republishes ids the stream has already seen.
 */
import type { CloudEvent } from './cloud-event';
import { decodeIndexedBody, MalformedEnvelopeError, type IndexEntry } from './envelope-index';

export { MalformedEnvelopeError } from './envelope-index';

/** Headers the mesh sets on its messages. */
export const Headers = {
  msgId: 'Nats-Msg-Id',
  count: 'Mesh-Count',
  /** The envelope index (envelope-index.ts): type, key, source, id and length of each event. */
  index: 'Mesh-Index',
  stage: 'Mesh-Stage',
  handler: 'Mesh-Handler',
  error: 'Mesh-Error',
  errorKind: 'Mesh-Error-Kind',
  attempts: 'Mesh-Attempts',
  originalSubject: 'Mesh-Original-Subject',
  originalSequence: 'Mesh-Original-Sequence',
  originalStream: 'Mesh-Original-Stream',
  /** Set by `mesh dlq redrive`: the DLQ sequence the event came back from. */
  redrive: 'Mesh-Redrive',
  traceparent: 'traceparent',
} as const;

export function encodeEnvelope(events: readonly CloudEvent[]): Uint8Array {
  return Buffer.from(JSON.stringify(events));
}

/** The same envelope from events already serialized one by one (so nothing is serialized twice). */
export function encodeEnvelopeParts(parts: readonly string[]): Uint8Array {
  return Buffer.from(`[${parts.join(',')}]`);
}

/**
 * The events of an envelope. With its index (decodeIndex), each event is
 * checked against its entry and a mismatch refused; without, the body is
 * read as it always was (envelopes stored before the index, redriven ones).
 */
export function decodeEnvelope(data: Uint8Array, index?: readonly IndexEntry[]): CloudEvent[] {
  if (index) return decodeIndexedBody(data, index);
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8'));
  } catch (err) {
    throw new MalformedEnvelopeError(`not JSON (${(err as Error).message})`);
  }
  if (!Array.isArray(parsed)) throw new MalformedEnvelopeError('expected a JSON array of CloudEvents');
  for (let i = 0; i < parsed.length; i++) {
    const e = parsed[i];
    if (typeof e !== 'object' || e === null || typeof e.id !== 'string' || typeof e.source !== 'string' || typeof e.type !== 'string') {
      throw new MalformedEnvelopeError(`element ${i} is not a CloudEvent with string id, source and type`);
    }
  }
  return parsed as CloudEvent[];
}

/**
 * Split events into chunks of at most `maxEvents` events and about `maxBytes`
 * of JSON each, keeping their order. A single event larger than `maxBytes`
 * gets a chunk of its own.
 */
export function chunkEvents<E>(events: readonly E[], maxEvents: number, maxBytes: number, sizeOf: (e: E) => number): E[][] {
  const chunks: E[][] = [];
  let current: E[] = [];
  let bytes = 2;
  for (const e of events) {
    const size = sizeOf(e) + 1;
    if (current.length > 0 && (current.length >= maxEvents || bytes + size > maxBytes)) {
      chunks.push(current);
      current = [];
      bytes = 2;
    }
    current.push(e);
    bytes += size;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}
