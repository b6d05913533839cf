/**
 * Publishing batch envelopes with a message id, acknowledged by JetStream.
 */
import type { JetStreamClient, PubAck } from '@nats-io/jetstream';
import { headers as natsHeaders } from '@nats-io/nats-core';
import { encodeEnvelope, Headers, type CloudEvent } from '@mesh/contracts';

export interface EnvelopeOut {
  subject: string;
  msgId: string;
  events: readonly CloudEvent[];
  /** The encoded envelope, when the caller has it already; otherwise `events` are encoded. */
  body?: Uint8Array;
}

export function publishEnvelope(js: JetStreamClient, out: EnvelopeOut, extra?: Record<string, string>): Promise<PubAck> {
  const h = natsHeaders();
  h.set(Headers.count, String(out.events.length));
  if (extra) for (const [k, v] of Object.entries(extra)) h.set(k, v);
  return js.publish(out.subject, out.body ?? encodeEnvelope(out.events), { msgID: out.msgId, headers: h });
}

/** Publish every envelope at once (in order on the wire) and wait for all their acks. */
export function publishAll(js: JetStreamClient, outs: readonly EnvelopeOut[]): Promise<PubAck[]> {
  return Promise.all(outs.map((o) => publishEnvelope(js, o)));
}
