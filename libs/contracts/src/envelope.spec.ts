import type { CloudEvent } from './cloud-event';
import { MalformedEnvelopeError, chunkEvents, decodeEnvelope, encodeEnvelope } from './envelope';

const event = (id: string, data?: unknown): CloudEvent => ({ specversion: '1.0', id, source: 'urn:test', type: 'order.created', data });
const bytes = (text: string) => new TextEncoder().encode(text);

/** The MalformedEnvelopeError decoding `data` throws; fails when it throws nothing or something else. */
function decodeError(data: Uint8Array): MalformedEnvelopeError {
  try {
    decodeEnvelope(data);
  } catch (err) {
    expect(err).toBeInstanceOf(MalformedEnvelopeError);
    return err as MalformedEnvelopeError;
  }
  throw new Error('decodeEnvelope accepted a malformed envelope');
}

describe('encodeEnvelope and decodeEnvelope', () => {
  it('round-trip a batch of events in order, data and extensions included', () => {
    const events = [event('1', { amount: 3, note: 'ünï' }), { ...event('2'), partitionkey: 'k', tenant: 'acme' }, event('3')];
    expect(decodeEnvelope(encodeEnvelope(events))).toEqual(events);
  });

  it('round-trip an empty batch', () => {
    expect(decodeEnvelope(encodeEnvelope([]))).toEqual([]);
  });

  it('decode only the bytes of a view into a larger buffer', () => {
    const encoded = encodeEnvelope([event('1')]);
    const larger = new Uint8Array(encoded.length + 8).fill(0x20);
    larger.set(encoded, 4);
    larger[0] = 0x7b; // '{' before the view: read it and the JSON breaks
    expect(decodeEnvelope(larger.subarray(4, 4 + encoded.length))).toEqual([event('1')]);
  });
});

describe('decodeEnvelope refuses what is not a batch envelope', () => {
  it('refuses bytes that are not JSON', () => {
    const err = decodeError(bytes('{"id":'));
    expect(err.name).toBe('MalformedEnvelopeError');
    expect(err.message).toMatch(/^malformed envelope: not JSON \(.+\)$/);
  });

  it('refuses JSON that is not an array', () => {
    const err = decodeError(bytes(JSON.stringify(event('1'))));
    expect(err.reason).toBe('expected a JSON array of CloudEvents');
  });

  it.each([
    ['without an id', { source: 'urn:test', type: 'order.created' }],
    ['with a numeric id', { id: 1, source: 'urn:test', type: 'order.created' }],
    ['without a source', { id: '1', type: 'order.created' }],
    ['without a type', { id: '1', source: 'urn:test' }],
    ['that is null', null],
    ['that is a string', 'event'],
  ])('names the position of an element %s', (_, bad) => {
    const err = decodeError(bytes(JSON.stringify([event('0'), bad])));
    expect(err.reason).toBe('element 1 is not a CloudEvent with string id, source and type');
  });
});

describe('chunkEvents', () => {
  // JSON of an 8-letter string is 10 bytes.
  const tenBytes = (n: number) => Array.from({ length: n }, (_, i) => `event-${String(i).padStart(2, '0')}`);
  const jsonSize = (e: unknown) => Buffer.byteLength(JSON.stringify(e));

  it('keeps every event, in order', () => {
    const events = tenBytes(23);
    const chunks = chunkEvents(events, 4, 1000, jsonSize);
    expect(chunks.flat()).toEqual(events);
  });

  it('puts at most maxEvents events in a chunk', () => {
    const chunks = chunkEvents(tenBytes(7), 3, 1_000_000, jsonSize);
    expect(chunks.map((c) => c.length)).toEqual([3, 3, 1]);
  });

  it('fills each chunk with as many events as fit in maxBytes of JSON', () => {
    // Four 10-byte events make a 45-byte array; a fifth would make 56.
    const chunks = chunkEvents(tenBytes(10), 100, 50, jsonSize);
    expect(chunks.map((c) => c.length)).toEqual([4, 4, 2]);
    for (const chunk of chunks) expect(jsonSize(chunk)).toBeLessThanOrEqual(50);
  });

  it('keeps real envelopes within maxBytes', () => {
    const events = Array.from({ length: 40 }, (_, i) => event(`e-${i}`, { text: 'x'.repeat(i * 7) }));
    const chunks = chunkEvents(events, 500, 2048, jsonSize);
    expect(chunks.length).toBeGreaterThan(1);
    for (const chunk of chunks) expect(encodeEnvelope(chunk).length).toBeLessThanOrEqual(2048);
    expect(chunks.flat()).toEqual(events);
  });

  it('gives an event larger than maxBytes a chunk of its own', () => {
    const small1 = event('small-1');
    const huge = event('huge', 'x'.repeat(5000));
    const small2 = event('small-2');
    expect(chunkEvents([small1, huge, small2], 100, 1000, jsonSize)).toEqual([[small1], [huge], [small2]]);
  });

  it('gives no chunks for no events', () => {
    expect(chunkEvents([], 10, 1000, jsonSize)).toEqual([]);
  });
});
