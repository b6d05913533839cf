import type { JsMsg } from '@nats-io/jetstream';
import { headers as natsHeaders } from '@nats-io/nats-core';
import { encodeEnvelope, encodeIndexedEnvelope, Headers, MalformedEnvelopeError, type CloudEvent } from '@mesh/contracts';
import { decodeInput } from './decode-input';

const event = (id: string): CloudEvent => ({ specversion: '1.0', id, source: 'urn:shop', type: 'order.created', partitionkey: `k-${id}` });

function message(data: Uint8Array, index?: string, redrive = false): JsMsg {
  const h = natsHeaders();
  h.set(Headers.count, '2');
  if (index !== undefined) h.set(Headers.index, index);
  if (redrive) h.set(Headers.redrive, '7');
  return {
    seq: 42,
    subject: 'mesh.ingest.3.order.created',
    data,
    headers: h,
    info: { timestampNanos: 1_700_000_000_123_456_000, deliveryCount: 2 },
  } as unknown as JsMsg;
}

function refusal(f: () => unknown): string {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(MalformedEnvelopeError);
    return (err as Error).message;
  }
  throw new Error('accepted a malformed envelope');
}

describe('decodeInput', () => {
  const events = [event('1'), event('2')];
  const { body, index } = encodeIndexedEnvelope(events);
  // Same length as the body, another id in the second event.
  const lying = Buffer.from(JSON.stringify([events[0], { ...events[1], id: '3' }]));

  it('reads an envelope with an index: its entries, its header as received and its events', () => {
    const env = decodeInput(message(body, index), false);
    expect(env).toMatchObject({
      seq: 42,
      subject: 'mesh.ingest.3.order.created',
      timestampMs: 1_700_000_000_123,
      deliveryCount: 2,
      redriven: false,
      indexHeader: index,
    });
    expect(env.index!.map((e) => [e.type, e.key, e.source, e.id])).toEqual([
      ['order.created', 'k-1', 'urn:shop', '1'],
      ['order.created', 'k-2', 'urn:shop', '2'],
    ]);
    expect(env.events).toEqual(events);
    expect(env.data).toBe(body);
  });

  it('reads an envelope without an index (stored before it, or redriven) from its body alone', () => {
    const old = encodeEnvelope(events);
    const env = decodeInput(message(old, undefined, true), true);
    expect(env).toMatchObject({ redriven: true, index: undefined, indexHeader: undefined, events });
  });

  it('refuses at once a body that differs from its index, for a worker that reads events', () => {
    expect(refusal(() => decodeInput(message(lying, index), false))).toMatch(/does not match the body: event 1 .+ \(id differs\)$/);
  });

  it('leaves the body unparsed for a worker that reads the index, and refuses it when the events are read', () => {
    const env = decodeInput(message(lying, index), true);
    expect(env.index).toHaveLength(2);
    expect(refusal(() => env.events)).toMatch(/does not match the body: event 1 .+ \(id differs\)$/);
  });

  it('refuses an index that does not fit the body, even for a worker that reads the index', () => {
    expect(refusal(() => decodeInput(message(encodeEnvelope([events[0]]), index), true))).toMatch(
      /^malformed envelope: index \(Mesh-Index header\) does not match the body: its 2 event\(s\) make/,
    );
    expect(refusal(() => decodeInput(message(body, 'not json'), true))).toMatch(/^malformed envelope: index \(Mesh-Index header\) is not JSON/);
  });

  it('refuses a body without an index that is not an envelope, even for a worker that reads the index', () => {
    expect(refusal(() => decodeInput(message(Buffer.from('{"id":1}')), true))).toBe('malformed envelope: expected a JSON array of CloudEvents');
  });
});
