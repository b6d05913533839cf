/**
 * The decode step of the stage runner: a JetStream message of a stage's
 * input as an InputEnvelope. An envelope with an index (the `Mesh-Index`
 * header) has the index checked against the body's length; its body is
 * parsed, and checked event by event against the index, at once, or on
 * first read of `events` for a worker that routes by the index alone.
 * An envelope without an index (stored before it existed, redriven from the
 * DLQ) is parsed at once, as it always was. Throws MalformedEnvelopeError.
 */
import type { JsMsg } from '@nats-io/jetstream';
import { decodeEnvelope, decodeIndex, Headers, type CloudEvent } from '@mesh/contracts';
import type { InputEnvelope } from './stage-runner';

export function decodeInput(m: JsMsg, lazy: boolean): InputEnvelope {
  const headers = m.headers;
  const data = m.data;
  const indexHeader = headers?.get(Headers.index) || undefined;
  const index = indexHeader === undefined ? undefined : decodeIndex(indexHeader, data.byteLength);
  let events: CloudEvent[] | undefined = index && lazy ? undefined : decodeEnvelope(data, index);
  return {
    seq: m.seq,
    subject: m.subject,
    timestampMs: Math.floor(Number(m.info.timestampNanos) / 1e6),
    deliveryCount: m.info.deliveryCount,
    redriven: headers?.has(Headers.redrive) ?? false,
    get events() {
      return (events ??= decodeEnvelope(data, index));
    },
    data,
    index,
    indexHeader,
  };
}
