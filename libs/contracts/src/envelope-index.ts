/**
 * The envelope index: what the router needs of each event of a batch
 * envelope, so it routes and deduplicates without parsing event bodies.
 *
 * It travels in the `Mesh-Index` header; the body stays the JSON array of
 * CloudEvents it always was, so every reader of bodies (the DLQ tools, the
 * console, `mesh tail`, redrive) is unchanged, and an envelope without the
 * header (stored before the index existed, redriven from the DLQ, published
 * by hand) is read by parsing its body as before.
 *
 * Header value: a JSON object; the types and sources of an envelope's
 * events repeat (ingest packs one type per envelope), so each is given once
 * and events refer to them by position:
 *
 *   {"types": ["order.created"], "sources": ["shop"],
 *    "events": [0, "k1", 0, "id-1", 231,  0, "k2", 0, "id-2", 229],
 *    "sampled": [1]}
 *
 * - `events` holds five values per event, in body order: its type (a
 *   position in `types`), its partition key (partitionKeyOf: `partitionkey`,
 *   else `subject`, else `source`), its source (a position in `sources`),
 *   its id, and the length in bytes of its JSON in the body;
 * - the body is laid out as `[` e0 `,` e1 ... `]` with nothing else between,
 *   so event i starts at byte 1 + the sum of (bytes + 1) of the events
 *   before it, and a subset of an envelope is forwarded as byte slices,
 *   without parsing or serializing;
 * - `sampled` (left out when empty) lists, in order, the events whose
 *   `traceparent` is sampled: the router reads those to continue their trace.
 *
 * The flat layout parses in about a third of the time of one array per event.
 * A later format gets a new header name, so readers never guess a version.
 *
 * Trust: decodeIndex checks the index's shape and that its lengths add up to
 * the body's; decodeEnvelope with an index checks every event against its
 * entry (type, key, source, id, length, sampling) and refuses a mismatch.
 * The router trusts an index that passes decodeIndex; the next stage, which
 * parses the bodies, refuses (dead-letters) an envelope whose body differs.
 */
import type { CloudEvent } from './cloud-event';
import { partitionKeyOf } from './partition';

export interface IndexEntry {
  type: string;
  /** The partition key (partitionKeyOf), not the `partitionkey` attribute. */
  key: string;
  source: string;
  id: string;
  /** Length in bytes of the event's JSON in the body. */
  bytes: number;
  /** The event's traceparent says sampled. */
  sampled: boolean;
}

/** Thrown when a message on an internal subject is not a batch envelope. */
export class MalformedEnvelopeError extends Error {
  constructor(readonly reason: string) {
    super(`malformed envelope: ${reason}`);
    this.name = 'MalformedEnvelopeError';
  }
}

/** Whether a W3C traceparent has its sampled flag set. */
export function traceSampled(traceparent: unknown): boolean {
  return typeof traceparent === 'string' && traceparent.length === 55 && (parseInt(traceparent.slice(53), 16) & 1) === 1;
}

export function indexEntryOf(event: CloudEvent, bytes: number): IndexEntry {
  return { type: event.type, key: partitionKeyOf(event), source: event.source, id: event.id, bytes, sampled: traceSampled(event.traceparent) };
}

/** The header value of an index. */
export function encodeIndex(entries: readonly IndexEntry[]): string {
  const types = new Map<string, number>();
  const sources = new Map<string, number>();
  const events: (string | number)[] = [];
  const sampled: number[] = [];
  entries.forEach((e, i) => {
    let t = types.get(e.type);
    if (t === undefined) types.set(e.type, (t = types.size));
    let s = sources.get(e.source);
    if (s === undefined) sources.set(e.source, (s = sources.size));
    events.push(t, e.key, s, e.id, e.bytes);
    if (e.sampled) sampled.push(i);
  });
  return JSON.stringify({ types: [...types.keys()], sources: [...sources.keys()], events, ...(sampled.length > 0 ? { sampled } : {}) });
}

/** Body length in bytes of an envelope whose events have these lengths. */
function bodyBytes(entries: readonly IndexEntry[]): number {
  let n = entries.length === 0 ? 2 : 1 + entries.length;
  for (const e of entries) n += e.bytes;
  return n;
}

const isString = (v: unknown): v is string => typeof v === 'string';

const Shape = '{"types": [strings], "sources": [strings], "events": [type, key, source, id, bytes, ...], "sampled": [positions]}';

const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every(isString);
const isPosition = (v: unknown, below: number): v is number => Number.isInteger(v) && (v as number) >= 0 && (v as number) < below;

/**
 * Read an index header; `bodyLength` is the length of the body it describes.
 * Throws MalformedEnvelopeError naming what is wrong.
 */
export function decodeIndex(header: string, bodyLength: number): IndexEntry[] {
  let parsed: { types?: unknown; sources?: unknown; events?: unknown; sampled?: unknown };
  try {
    parsed = JSON.parse(header);
  } catch (err) {
    throw new MalformedEnvelopeError(`index (Mesh-Index header) is not JSON (${(err as Error).message})`);
  }
  if (typeof parsed !== 'object' || parsed === null) throw new MalformedEnvelopeError(`index (Mesh-Index header) must be ${Shape}`);
  const { types, sources, events, sampled = [] } = parsed;
  if (!isStrings(types) || !isStrings(sources) || !Array.isArray(events) || events.length % 5 !== 0 || !Array.isArray(sampled)) {
    throw new MalformedEnvelopeError(`index (Mesh-Index header) must be ${Shape}`);
  }
  const entries: IndexEntry[] = new Array(events.length / 5);
  for (let i = 0, at = 0; at < events.length; i++, at += 5) {
    const t = events[at];
    const key = events[at + 1];
    const s = events[at + 2];
    const id = events[at + 3];
    const bytes = events[at + 4];
    if (!isPosition(t, types.length) || !isString(key) || !isPosition(s, sources.length) || !isString(id) || !Number.isSafeInteger(bytes) || bytes < 2) {
      throw new MalformedEnvelopeError(
        `index (Mesh-Index header) event ${i} is not type, key, source, id, bytes (type and source positions in types and sources): ${JSON.stringify(events.slice(at, at + 5))}`,
      );
    }
    entries[i] = { type: types[t], key, source: sources[s], id, bytes, sampled: false };
  }
  for (let k = 0; k < sampled.length; k++) {
    const i = sampled[k];
    if (!isPosition(i, entries.length) || (k > 0 && i <= sampled[k - 1])) {
      throw new MalformedEnvelopeError(
        `index (Mesh-Index header) sampled must list event positions in order, below ${entries.length}: ${JSON.stringify(sampled)}`,
      );
    }
    entries[i].sampled = true;
  }
  const expected = bodyBytes(entries);
  if (expected !== bodyLength) {
    throw new MalformedEnvelopeError(
      `index (Mesh-Index header) does not match the body: its ${entries.length} event(s) make ${expected} bytes, the body has ${bodyLength}`,
    );
  }
  return entries;
}

/** An envelope with its index, from its events (each serialized once; `parts` when the caller has their JSON already). */
export function encodeIndexedEnvelope(
  events: readonly CloudEvent[],
  parts: readonly string[] = events.map((e) => JSON.stringify(e)),
): { body: Uint8Array; index: string } {
  const body = Buffer.from(`[${parts.join(',')}]`);
  // One byte per char when the body is ASCII: no need to measure each part.
  const ascii = body.length === 2 + parts.reduce((n, p) => n + p.length + 1, parts.length === 0 ? 0 : -1);
  const index = encodeIndex(events.map((e, i) => indexEntryOf(e, ascii ? parts[i].length : Buffer.byteLength(parts[i]))));
  return { body, index };
}

/** Where each event's JSON starts in the body. */
function offsetsOf(entries: readonly IndexEntry[]): number[] {
  const offsets = new Array<number>(entries.length);
  let at = 1;
  for (let i = 0; i < entries.length; i++) {
    offsets[i] = at;
    at += entries[i].bytes + 1;
  }
  return offsets;
}

/** The body of an envelope holding the events at `positions` (in that order), cut from `body` without parsing it. */
export function sliceEnvelope(body: Uint8Array, entries: readonly IndexEntry[], positions: readonly number[]): Uint8Array {
  const offsets = offsetsOf(entries);
  let length = positions.length === 0 ? 2 : 1 + positions.length;
  for (const p of positions) length += entries[p].bytes;
  const out = Buffer.allocUnsafe(length);
  out[0] = 0x5b; // [
  let at = 1;
  positions.forEach((p, k) => {
    if (k > 0) out[at++] = 0x2c; // ,
    out.set(body.subarray(offsets[p], offsets[p] + entries[p].bytes), at);
    at += entries[p].bytes;
  });
  out[at] = 0x5d; // ]
  return out;
}

const isEvent = (e: unknown): e is CloudEvent =>
  typeof e === 'object' &&
  e !== null &&
  !Array.isArray(e) &&
  isString((e as CloudEvent).id) &&
  isString((e as CloudEvent).source) &&
  isString((e as CloudEvent).type);

/** The events of a body described by `entries`, each checked against its entry. */
export function decodeIndexedBody(data: Uint8Array, entries: readonly IndexEntry[]): CloudEvent[] {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (bodyBytes(entries) !== buf.length) {
    throw new MalformedEnvelopeError(
      `index (Mesh-Index header) does not match the body: its ${entries.length} event(s) make ${bodyBytes(entries)} bytes, the body has ${buf.length}`,
    );
  }
  // Byte offsets are string offsets when every byte decoded to one char (ASCII, the usual case).
  const text = buf.toString('utf8');
  const ascii = text.length === buf.length;
  const events: CloudEvent[] = new Array(entries.length);
  let at = 1;
  if (buf[0] !== 0x5b || buf[buf.length - 1] !== 0x5d) throw new MalformedEnvelopeError('expected a JSON array of CloudEvents');
  for (let i = 0; i < entries.length; i++) {
    const x = entries[i];
    const end = at + x.bytes;
    if (i > 0 && buf[at - 1] !== 0x2c)
      throw new MalformedEnvelopeError(`index (Mesh-Index header) does not match the body: event ${i} does not start at byte ${at}`);
    let e: unknown;
    try {
      e = JSON.parse(ascii ? text.slice(at, end) : buf.toString('utf8', at, end));
    } catch (err) {
      throw new MalformedEnvelopeError(
        `index (Mesh-Index header) does not match the body: bytes ${at} to ${end} of event ${i} are not JSON (${(err as Error).message})`,
      );
    }
    if (!isEvent(e)) throw new MalformedEnvelopeError(`element ${i} is not a CloudEvent with string id, source and type`);
    const differs =
      e.type !== x.type
        ? 'type'
        : e.source !== x.source
          ? 'source'
          : e.id !== x.id
            ? 'id'
            : partitionKeyOf(e) !== x.key
              ? 'key'
              : traceSampled(e.traceparent) !== x.sampled
                ? 'sampled'
                : undefined;
    if (differs) {
      throw new MalformedEnvelopeError(
        `index (Mesh-Index header) does not match the body: event ${i} is ${JSON.stringify([e.type, partitionKeyOf(e), e.source, e.id])}, its entry ${JSON.stringify([x.type, x.key, x.source, x.id])} (${differs} differs)`,
      );
    }
    events[i] = e;
    at = end + 1;
  }
  return events;
}
