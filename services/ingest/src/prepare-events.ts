/**
 * Validates candidate events and packs the accepted ones into batch
 * envelopes: one per partition and type (the subject names both), in request
 * order, split by size. Either every event is valid and envelopes come back,
 * or the problems do and nothing is to be stored.
 */
import { createHash } from 'node:crypto';
import {
  chunkEvents,
  encodeIndex,
  encodeIndexedEnvelope,
  indexEntryOf,
  partitionKeyOf,
  partitionOf,
  Subjects,
  validateEvent,
  type CloudEvent,
  type EventProblem,
} from '@mesh/contracts';
import type { EnvelopeOut } from '@mesh/messaging';

export interface PrepareOptions {
  partitions: number;
  maxEvents: number;
  maxBytes: number;
  /** Arrival time, for events without `time`. */
  now: Date;
  /** Type to use for events without one (the NATS entry's subject). */
  defaultType?: string;
  /** Largest event accepted, in bytes of JSON (below the server's max_payload, which an envelope must fit in). */
  maxEventBytes?: number;
  /** Pack the request's events into envelopes (default); ingest itself packs a whole round of requests at once. */
  pack?: boolean;
  /**
   * Called with the accepted events just before they are serialized, to set
   * what must be part of their JSON (ingest's trace context): each event is
   * serialized once, and that text is what is stored.
   */
  stamp?(events: CloudEvent[]): void;
  /**
   * The candidates are freshly parsed and the caller's to change: `time` is
   * filled in on them instead of on copies. Copies made by spreading are
   * slower to extend and to serialize than the parsed objects (about a third
   * of the cost of preparing a 100-event request, measured).
   */
  inPlace?: boolean;
}

export interface PackOptions {
  partitions: number;
  maxEvents: number;
  maxBytes: number;
}

/**
 * Envelopes for events: one per partition and type, in the events' order,
 * split by size, each with its index (the `Mesh-Index` header the router
 * routes by); the message id is a hash of their `source` + `id`.
 */
export function packEnvelopes(
  events: readonly CloudEvent[],
  sizeOf: (e: CloudEvent) => number,
  o: PackOptions,
  jsonOf?: (e: CloudEvent) => string,
): EnvelopeOut[] {
  const groups = new Map<string, { partition: number; type: string; events: CloudEvent[] }>();
  for (const e of events) {
    const partition = partitionOf(partitionKeyOf(e), o.partitions);
    const k = `${partition} ${e.type}`;
    let g = groups.get(k);
    if (!g) groups.set(k, (g = { partition, type: e.type, events: [] }));
    g.events.push(e);
  }
  // The index travels in the same message: an envelope's events and their
  // entries (counted as if each had its own type and source: at most what
  // they take) stay within maxBytes.
  const withIndexEntry = (e: CloudEvent) =>
    sizeOf(e) + Buffer.byteLength(e.type) + Buffer.byteLength(e.source) + Buffer.byteLength(partitionKeyOf(e)) + Buffer.byteLength(e.id) + 32;
  const envelopes: EnvelopeOut[] = [];
  for (const g of groups.values()) {
    for (const chunk of chunkEvents(g.events, o.maxEvents, o.maxBytes, withIndexEntry)) {
      // With the events' JSON at hand the body is made of it (else publishing encodes them); either way with its index.
      const { body, index } = jsonOf ? encodeIndexedEnvelope(chunk, chunk.map(jsonOf)) : { body: undefined, index: undefined };
      envelopes.push({ subject: Subjects.ingest(g.partition, g.type), msgId: envelopeId(chunk), events: chunk, body, index });
    }
  }
  return envelopes;
}

export type Prepared =
  | { ok: true; envelopes: EnvelopeOut[]; events: CloudEvent[]; sizes: Map<CloudEvent, number>; json: Map<CloudEvent, string> }
  | { ok: false; problems: EventProblem[]; tooLarge?: boolean };

/**
 * The envelope's message id: a hash of the `source` + `id` of its events, so
 * a client that retries the same request stores it once.
 */
function envelopeId(events: readonly CloudEvent[]): string {
  const h = createHash('sha256');
  for (const e of events) h.update(`${e.source.length}:${e.source}${e.id}\n`);
  return `ingest:${h.digest('base64url').slice(0, 32)}`;
}

/**
 * What an event takes of a stored message: its JSON, and its entry in the
 * envelope's index (a header, in the same message). The entry repeats at
 * most the event's type, source, key and id, so it is under twice the JSON
 * plus 64 bytes: it is measured only when it could make the difference.
 */
function storedBytes(e: CloudEvent, json: number, limit: number): number {
  return json * 3 + 64 <= limit ? json : json + Buffer.byteLength(encodeIndex([indexEntryOf(e, json)]));
}

export function prepareEvents(candidates: readonly unknown[], o: PrepareOptions): Prepared {
  const problems: EventProblem[] = [];
  const events: CloudEvent[] = [];
  const time = o.now.toISOString();
  candidates.forEach((candidate, index) => {
    let c = candidate;
    if (o.defaultType && typeof c === 'object' && c !== null && !Array.isArray(c) && (c as { type?: unknown }).type === undefined) {
      c = { ...c, type: o.defaultType };
    }
    const found = validateEvent(c, index);
    if (found.length > 0) problems.push(...found);
    else events.push(c as CloudEvent);
  });
  if (problems.length > 0) return { ok: false, problems };

  const accepted = o.inPlace
    ? events.map((e) => {
        if (e.time === undefined) e.time = time;
        return e;
      })
    : events.map((e) => (e.time === undefined ? { ...e, time } : e));
  o.stamp?.(accepted);
  const json = new Map<CloudEvent, string>();
  const sizes = new Map<CloudEvent, number>();
  for (const e of accepted) {
    const text = JSON.stringify(e);
    json.set(e, text);
    sizes.set(e, Buffer.byteLength(text));
  }
  if (o.maxEventBytes !== undefined) {
    const limit = o.maxEventBytes;
    const large = accepted.flatMap((e, index) => {
      const json = sizes.get(e)!;
      const stored = storedBytes(e, json, limit);
      if (stored <= limit) return [];
      const size = stored === json ? `${json} bytes` : `${json} bytes, ${stored} with its entry in the envelope's index`;
      return [{ index, attribute: '', problem: `the event is ${size}; at most ${limit} bytes are accepted per event` }];
    });
    if (large.length > 0) return { ok: false, problems: large, tooLarge: true };
  }
  const envelopes =
    o.pack === false
      ? []
      : packEnvelopes(
          accepted,
          (e) => sizes.get(e)!,
          o,
          (e) => json.get(e)!,
        );
  return { ok: true, envelopes, events: accepted, sizes, json };
}
