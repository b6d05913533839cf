import type { CloudEvent } from './cloud-event';
import { decodeEnvelope, encodeEnvelope, MalformedEnvelopeError } from './envelope';
import { decodeIndex, encodeIndex, encodeIndexedEnvelope, indexEntryOf, sliceEnvelope, type IndexEntry } from './envelope-index';

const SAMPLED = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
const UNSAMPLED = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00';

const event = (id: string, extra: Partial<CloudEvent> = {}): CloudEvent => ({
  specversion: '1.0',
  id,
  source: 'urn:shop',
  type: 'order.created',
  partitionkey: `key-${id}`,
  data: { amount: 3 },
  ...extra,
});

/** The MalformedEnvelopeError `f` throws; fails when it throws nothing or something else. */
function refusal(f: () => unknown): MalformedEnvelopeError {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(MalformedEnvelopeError);
    return err as MalformedEnvelopeError;
  }
  throw new Error('accepted what it should have refused');
}

/** An envelope with its index, read back as the stage runner reads it. */
function roundTrip(events: CloudEvent[]): { entries: IndexEntry[]; decoded: CloudEvent[]; body: Uint8Array } {
  const { body, index } = encodeIndexedEnvelope(events);
  const entries = decodeIndex(index, body.length);
  return { entries, decoded: decodeEnvelope(body, entries), body };
}

describe('the envelope index', () => {
  it('round-trips events with their index: type, partition key, source, id, length and sampling of each', () => {
    const events = [
      event('1', { traceparent: SAMPLED }),
      event('2', { type: 'order.paid', source: 'urn:till', traceparent: UNSAMPLED }),
      { ...event('3'), partitionkey: undefined, subject: 'by-subject' },
      { ...event('4'), partitionkey: undefined },
    ];
    const { entries, decoded, body } = roundTrip(events);
    expect(decoded).toEqual(JSON.parse(JSON.stringify(events)));
    expect(entries).toEqual([
      { type: 'order.created', key: 'key-1', source: 'urn:shop', id: '1', bytes: Buffer.byteLength(JSON.stringify(events[0])), sampled: true },
      { type: 'order.paid', key: 'key-2', source: 'urn:till', id: '2', bytes: Buffer.byteLength(JSON.stringify(events[1])), sampled: false },
      { type: 'order.created', key: 'by-subject', source: 'urn:shop', id: '3', bytes: Buffer.byteLength(JSON.stringify(events[2])), sampled: false },
      { type: 'order.created', key: 'urn:shop', source: 'urn:shop', id: '4', bytes: Buffer.byteLength(JSON.stringify(events[3])), sampled: false },
    ]);
    // The body is the JSON array it always was: readers that know nothing of the index read it as before.
    expect(Buffer.from(body).toString()).toBe(JSON.stringify(events));
  });

  it('counts bytes, not characters, for events that are not ASCII', () => {
    const events = [event('ünï', { data: { note: '日本語 😀' } }), event('2')];
    const { entries, decoded } = roundTrip(events);
    expect(entries[0].bytes).toBe(Buffer.byteLength(JSON.stringify(events[0])));
    expect(entries[0].bytes).toBeGreaterThan(JSON.stringify(events[0]).length);
    expect(decoded).toEqual(events);
  });

  it('round-trips an empty envelope', () => {
    expect(roundTrip([])).toEqual({ entries: [], decoded: [], body: Buffer.from('[]') });
  });

  it('gives each type and source once, and events by position, as the design notes show', () => {
    const entries = [indexEntryOf(event('id-1', { partitionkey: 'k1' }), 231), indexEntryOf(event('id-2', { partitionkey: 'k2', traceparent: SAMPLED }), 229)];
    expect(JSON.parse(encodeIndex(entries))).toEqual({
      types: ['order.created'],
      sources: ['urn:shop'],
      events: [0, 'k1', 0, 'id-1', 231, 0, 'k2', 0, 'id-2', 229],
      sampled: [1],
    });
  });

  it('cuts a subset of an envelope from its bytes, byte for byte what encoding those events gives', () => {
    const events = [event('1'), event('ü2', { data: { x: 'ß' } }), event('3'), event('4')];
    const { body, index } = encodeIndexedEnvelope(events);
    const entries = decodeIndex(index, body.length);
    const cut = sliceEnvelope(body, entries, [1, 3]);
    expect(Buffer.from(cut).toString()).toBe(Buffer.from(encodeEnvelope([events[1], events[3]])).toString());
    const subIndex = decodeIndex(encodeIndex([entries[1], entries[3]]), cut.length);
    expect(decodeEnvelope(cut, subIndex)).toEqual([events[1], events[3]]);
    expect(Buffer.from(sliceEnvelope(body, entries, [])).toString()).toBe('[]');
  });
});

describe('reading envelopes without an index (stored before it, redriven from the DLQ)', () => {
  it('reads the body alone, as before, whatever its layout', () => {
    const events = [event('1'), event('2')];
    expect(decodeEnvelope(Buffer.from(JSON.stringify(events, null, 2)))).toEqual(events);
  });
});

describe('decodeIndex refuses an index that cannot describe the body', () => {
  const { body, index } = encodeIndexedEnvelope([event('1'), event('2')]);
  const parsed = JSON.parse(index) as { types: string[]; sources: string[]; events: unknown[] };

  it('refuses a header that is not JSON', () => {
    expect(refusal(() => decodeIndex('{"types":', body.length)).message).toMatch(/^malformed envelope: index \(Mesh-Index header\) is not JSON \(.+\)$/);
  });

  it.each([
    ['an array', '[]'],
    ['an object without events', JSON.stringify({ types: [], sources: [] })],
    ['events not in fives', JSON.stringify({ ...parsed, events: parsed.events.slice(0, 7) })],
    ['types that are not strings', JSON.stringify({ ...parsed, types: [1] })],
  ])('refuses %s, naming the shape it must have', (_, header) => {
    expect(refusal(() => decodeIndex(header, body.length)).reason).toBe(
      'index (Mesh-Index header) must be {"types": [strings], "sources": [strings], "events": [type, key, source, id, bytes, ...], "sampled": [positions]}',
    );
  });

  it.each([
    ['a type position past types', 0, 1],
    ['a numeric key', 1, 7],
    ['a source position that is not a whole number', 2, 0.5],
    ['an id that is null', 3, null],
    ['a negative length', 4, -40],
  ])('refuses an event with %s, naming the event', (_, field, value) => {
    const events = [...parsed.events];
    events[5 + field] = value;
    expect(refusal(() => decodeIndex(JSON.stringify({ ...parsed, events }), body.length)).reason).toMatch(
      /^index \(Mesh-Index header\) event 1 is not type, key, source, id, bytes/,
    );
  });

  it('refuses sampled positions out of order or past the events', () => {
    for (const sampled of [[1, 0], [2], ['0']]) {
      expect(refusal(() => decodeIndex(JSON.stringify({ ...parsed, sampled }), body.length)).reason).toMatch(
        /sampled must list event positions in order, below 2/,
      );
    }
  });

  it('refuses lengths that do not add up to the body, giving both', () => {
    expect(refusal(() => decodeIndex(index, body.length + 1)).reason).toBe(
      `index (Mesh-Index header) does not match the body: its 2 event(s) make ${body.length} bytes, the body has ${body.length + 1}`,
    );
  });
});

describe('decodeEnvelope with an index refuses a body that differs from it', () => {
  const events = [event('1'), event('2', { traceparent: UNSAMPLED })];
  const { body, index } = encodeIndexedEnvelope(events);
  const entries = decodeIndex(index, body.length);

  /** The body of `other` read with the index of `events`. */
  const readWithIndex = (other: CloudEvent[]) => refusal(() => decodeEnvelope(encodeEnvelope(other), entries)).reason;

  it.each([
    ['type', { type: 'order.created' }, { type: 'order.updated' }],
    ['source', { source: 'urn:shop' }, { source: 'urn:till' }],
    ['id', { id: '2' }, { id: '9' }],
    ['key', { partitionkey: 'key-2' }, { partitionkey: 'key-9' }],
    ['sampled', { traceparent: UNSAMPLED }, { traceparent: SAMPLED }],
  ])('refuses an event whose %s differs from its entry', (what, same, changed) => {
    // Same length as the indexed event, so only the comparison can tell.
    const other = { ...events[1], ...changed };
    expect(Buffer.byteLength(JSON.stringify(other))).toBe(Buffer.byteLength(JSON.stringify({ ...events[1], ...same })));
    expect(readWithIndex([events[0], other])).toMatch(
      new RegExp(`^index \\(Mesh-Index header\\) does not match the body: event 1 is .+ \\(${what} differs\\)$`),
    );
  });

  it('refuses events of the same length swapped within the body', () => {
    const pair = [event('1'), event('2')];
    const encoded = encodeIndexedEnvelope(pair);
    const swapped = encodeEnvelope([pair[1], pair[0]]);
    expect(refusal(() => decodeEnvelope(swapped, decodeIndex(encoded.index, swapped.length))).reason).toMatch(
      /^index \(Mesh-Index header\) does not match the body: event 0 is .+ \(id differs\)$/,
    );
  });

  it('refuses lengths that add up but cut the events in the wrong places', () => {
    const shifted = entries.map((e, i) => ({ ...e, bytes: e.bytes + (i === 0 ? 1 : -1) }));
    expect(refusal(() => decodeEnvelope(body, shifted)).reason).toMatch(/^index \(Mesh-Index header\) does not match the body: /);
  });

  it('refuses a body of another length', () => {
    expect(refusal(() => decodeEnvelope(encodeEnvelope([events[0]]), entries)).reason).toMatch(/its 2 event\(s\) make \d+ bytes, the body has \d+/);
  });

  it('refuses a body that is not a JSON array of CloudEvents even when its length fits', () => {
    const notEvents = Buffer.from(`{${'x'.repeat(body.length - 2)}}`);
    expect(refusal(() => decodeEnvelope(notEvents, entries)).reason).toBe('expected a JSON array of CloudEvents');
  });
});
