/**
 * Publishing batch envelopes with a message id, acknowledged by JetStream.
 */
import type { JetStreamClient, PubAck } from '@nats-io/jetstream';
import { headers as natsHeaders } from '@nats-io/nats-core';
import { encodeIndexedEnvelope, Headers, type CloudEvent } from '@mesh/contracts';

export interface EnvelopeOut {
  subject: string;
  msgId: string;
  events: readonly CloudEvent[];
  /** The encoded envelope, when the caller has it already; otherwise `events` are encoded, with their index. */
  body?: Uint8Array;
  /** The index of `body` (the `Mesh-Index` header: encodeIndex); a body given without one goes without. */
  index?: string;
}

/** An envelope already encoded, with the number of its events: forwarded without reading them (the router). */
export interface RawEnvelopeOut {
  subject: string;
  msgId: string;
  count: number;
  body: Uint8Array;
  index?: string;
}

export function publishEnvelope(js: JetStreamClient, out: EnvelopeOut | RawEnvelopeOut, extra?: Record<string, string>): Promise<PubAck> {
  const h = natsHeaders();
  h.set(Headers.count, String('count' in out ? out.count : out.events.length));
  if (extra) for (const [k, v] of Object.entries(extra)) h.set(k, v);
  let { body, index } = out;
  if (!body) ({ body, index } = encodeIndexedEnvelope((out as EnvelopeOut).events));
  if (index !== undefined) h.set(Headers.index, index);
  return js.publish(out.subject, body, { msgID: out.msgId, headers: h });
}

/** Publish every envelope at once (in order on the wire) and wait for all their acks. */
export function publishAll(js: JetStreamClient, outs: readonly (EnvelopeOut | RawEnvelopeOut)[]): Promise<PubAck[]> {
  return Promise.all(outs.map((o) => publishEnvelope(js, o)));
}
