import { decodeEnvelope, decodeIndex, encodeIndex, indexEntryOf, partitionOf, type CloudEvent } from '@mesh/contracts';
import { prepareEvents, type PrepareOptions, type Prepared } from './prepare-events';

const P = 16;
const now = new Date('2026-02-01T10:00:00.000Z');
const options: PrepareOptions = { partitions: P, maxEvents: 100, maxBytes: 1_000_000, now };

function event(id: string, extra: Partial<CloudEvent> = {}): CloudEvent {
  return { specversion: '1.0', id, source: 'shop', type: 'order.created', ...extra };
}

function accepted(result: Prepared): Extract<Prepared, { ok: true }> {
  if (!result.ok) throw new Error(`expected the events to be accepted, got ${JSON.stringify(result.problems)}`);
  return result;
}

/** Partition keys that land in distinct partitions, so tests do not depend on hash luck. */
function keysInDistinctPartitions(count: number): string[] {
  const byPartition = new Map<number, string>();
  for (let i = 0; byPartition.size < count; i++) {
    const key = `customer-${i}`;
    const p = partitionOf(key, P);
    if (!byPartition.has(p)) byPartition.set(p, key);
  }
  return [...byPartition.values()];
}

describe('prepareEvents', () => {
  describe('validation', () => {
    it('accepts nothing when one event of the request is invalid, and names its index', () => {
      const result = prepareEvents([event('1'), { ...event('2'), specversion: '0.3' }, event('3')], options);
      expect(result.ok).toBe(false);
      expect('envelopes' in result).toBe(false);
      if (result.ok) return;
      expect(result.problems).toEqual([expect.objectContaining({ index: 1, attribute: 'specversion' })]);
    });

    it('reports the problems of every invalid event, each with its own index', () => {
      const result = prepareEvents([{ ...event('1'), source: '' }, event('2'), 'not an event'], options);
      if (result.ok) throw new Error('expected problems');
      expect(result.problems.map((p) => p.index)).toEqual([0, 2]);
    });
  });

  describe('time', () => {
    it('fills a missing time with the arrival time', () => {
      const r = accepted(prepareEvents([event('1')], options));
      expect(r.events[0].time).toBe('2026-02-01T10:00:00.000Z');
      expect(r.envelopes[0].events[0].time).toBe('2026-02-01T10:00:00.000Z');
    });

    it('keeps a time the event already has', () => {
      const r = accepted(prepareEvents([event('1', { time: '2025-12-24T18:30:00+01:00' })], options));
      expect(r.events[0].time).toBe('2025-12-24T18:30:00+01:00');
    });

    it('fills the time in on the candidates themselves when told they are its to change, with the same result', () => {
      const copied = accepted(prepareEvents([event('1'), event('2', { time: '2025-12-24T18:30:00Z' })], options));
      const candidates = [event('1'), event('2', { time: '2025-12-24T18:30:00Z' })];
      const inPlace = accepted(prepareEvents(candidates, { ...options, inPlace: true }));
      expect(inPlace.events[0]).toBe(candidates[0]);
      expect(candidates[0].time).toBe('2026-02-01T10:00:00.000Z');
      expect([...inPlace.json.values()]).toEqual([...copied.json.values()]);
      expect(inPlace.envelopes.map((e) => [e.subject, e.msgId, Buffer.from(e.body!).toString()])).toEqual(
        copied.envelopes.map((e) => [e.subject, e.msgId, Buffer.from(e.body!).toString()]),
      );
    });

    it('does not mutate the candidates it was given', () => {
      const candidate = event('1');
      prepareEvents([candidate], options);
      expect(candidate).not.toHaveProperty('time');
    });
  });

  describe('serialization', () => {
    it('serializes each event once, after stamp, and stores exactly that text', () => {
      const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
      const r = accepted(
        prepareEvents([event('1'), event('2', { traceparent: '00-11111111111111111111111111111111-2222222222222222-01' })], {
          ...options,
          stamp: (events) => {
            for (const e of events) e.traceparent ??= traceparent;
          },
        }),
      );
      const body = JSON.parse(Buffer.from(r.envelopes[0].body!).toString()) as CloudEvent[];
      expect(body).toEqual(r.events);
      expect(body[0].traceparent).toBe(traceparent);
      expect(body[1].traceparent).toBe('00-11111111111111111111111111111111-2222222222222222-01');
      expect(r.sizes.get(r.events[0])).toBe(Buffer.byteLength(JSON.stringify(r.events[0])));
    });

    it('counts what stamp added against the largest event accepted', () => {
      const base = event('1', { data: { pad: 'x'.repeat(100) } });
      const stored = { ...base, time: now.toISOString() };
      const json = Buffer.byteLength(JSON.stringify(stored));
      // The event's JSON and its entry in the envelope's index.
      const size = json + Buffer.byteLength(encodeIndex([indexEntryOf(stored, json)]));
      const stamp = (events: CloudEvent[]) => {
        for (const e of events) e.traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
      };
      expect(prepareEvents([base], { ...options, maxEventBytes: size }).ok).toBe(true);
      const r = prepareEvents([base], { ...options, maxEventBytes: size, stamp });
      expect(r.ok).toBe(false);
      expect(!r.ok && r.tooLarge).toBe(true);
    });

    it("counts the event's entry in the envelope index against the largest event accepted, when it could make the difference", () => {
      const key = 'k'.repeat(1000);
      const base = event('1', { partitionkey: key, time: now.toISOString() });
      const json = Buffer.byteLength(JSON.stringify(base));
      const entry = Buffer.byteLength(encodeIndex([indexEntryOf(base, json)]));
      expect(entry).toBeGreaterThan(1000);
      expect(prepareEvents([base], { ...options, maxEventBytes: json + entry }).ok).toBe(true);
      const r = prepareEvents([base], { ...options, maxEventBytes: json + entry - 1 });
      expect(!r.ok && r.problems).toEqual([
        {
          index: 0,
          attribute: '',
          problem: `the event is ${json} bytes, ${json + entry} with its entry in the envelope's index; at most ${json + entry - 1} bytes are accepted per event`,
        },
      ]);
      // Far below the limit, the JSON alone is counted.
      expect(prepareEvents([base], { ...options, maxEventBytes: 3 * json + 64 }).ok).toBe(true);
    });
  });

  describe('envelopes', () => {
    it('puts the events of one partition and type in one envelope on mesh.ingest.<p>.<type>, in request order', () => {
      const [a, b] = keysInDistinctPartitions(2);
      const events = [
        event('1', { partitionkey: a }),
        event('2', { partitionkey: b }),
        event('3', { partitionkey: a, type: 'order.cancelled' }),
        event('4', { partitionkey: a }),
        event('5', { partitionkey: b }),
        event('6', { partitionkey: a }),
      ];
      const r = accepted(prepareEvents(events, options));
      const bySubject = Object.fromEntries(r.envelopes.map((e) => [e.subject, e.events.map((x) => x.id)]));
      expect(bySubject).toEqual({
        [`mesh.ingest.${partitionOf(a, P)}.order.created`]: ['1', '4', '6'],
        [`mesh.ingest.${partitionOf(b, P)}.order.created`]: ['2', '5'],
        [`mesh.ingest.${partitionOf(a, P)}.order.cancelled`]: ['3'],
      });
    });

    it('assigns partition fnv1a32(partitionkey) % P, falling back to subject, then source', () => {
      const r = accepted(prepareEvents([event('1', { partitionkey: 'alice' }), event('2', { subject: 'bob' }), event('3', { source: 'carol-shop' })], options));
      const partitionOfId = new Map(r.envelopes.flatMap((env) => env.events.map((e) => [e.id, Number(env.subject.split('.')[2])])));
      expect(partitionOfId.get('1')).toBe(partitionOf('alice', P));
      expect(partitionOfId.get('2')).toBe(partitionOf('bob', P));
      expect(partitionOfId.get('3')).toBe(partitionOf('carol-shop', P));
    });

    it('splits a group into chunks of at most maxEvents, keeping order', () => {
      const events = Array.from({ length: 7 }, (_, i) => event(String(i), { partitionkey: 'k' }));
      const r = accepted(prepareEvents(events, { ...options, maxEvents: 3 }));
      expect(r.envelopes.map((e) => e.events.map((x) => x.id))).toEqual([['0', '1', '2'], ['3', '4', '5'], ['6']]);
      expect(new Set(r.envelopes.map((e) => e.subject)).size).toBe(1);
      expect(new Set(r.envelopes.map((e) => e.msgId)).size).toBe(3);
    });

    it('gives each envelope the index of its body', () => {
      const [a, b] = keysInDistinctPartitions(2);
      const r = accepted(
        prepareEvents([event('1', { partitionkey: a }), event('2', { partitionkey: b }), event('3', { partitionkey: a, data: { note: 'ünï' } })], options),
      );
      for (const env of r.envelopes) {
        const entries = decodeIndex(env.index!, env.body!.length);
        expect(entries.map((x) => [x.type, x.key, x.source, x.id])).toEqual(env.events.map((e) => [e.type, e.partitionkey, e.source, e.id]));
        expect(decodeEnvelope(env.body!, entries)).toEqual(env.events);
      }
    });

    it('keeps the body and the index of an envelope within maxBytes together', () => {
      // One partition (by subject), each event its own long source: the index holds each source and the key, about what the body holds.
      const events = Array.from({ length: 40 }, (_, i) => event(String(i), { subject: 'k'.repeat(300), source: `${'s'.repeat(300)}-${i}` }));
      const r = accepted(prepareEvents(events, { ...options, maxBytes: 5000 }));
      expect(r.envelopes.length).toBeGreaterThan(1);
      for (const env of r.envelopes) expect(env.body!.length + Buffer.byteLength(env.index!)).toBeLessThanOrEqual(5000);
      expect(r.envelopes.flatMap((e) => e.events.map((x) => x.id))).toEqual(events.map((e) => e.id));
    });

    it('splits a group by maxBytes as well', () => {
      const events = Array.from({ length: 4 }, (_, i) => event(String(i), { partitionkey: 'k', data: 'x'.repeat(200) }));
      const r = accepted(prepareEvents(events, { ...options, maxBytes: 600 }));
      expect(r.envelopes.length).toBeGreaterThan(1);
      expect(r.envelopes.flatMap((e) => e.events.map((x) => x.id))).toEqual(['0', '1', '2', '3']);
    });
  });

  describe('envelope message id', () => {
    it('is the same for the same events, so a retried request is stored once', () => {
      const first = accepted(prepareEvents([event('1'), event('2')], options));
      const retried = accepted(prepareEvents([event('1'), event('2')], { ...options, now: new Date('2026-02-01T10:00:05Z') }));
      expect(retried.envelopes[0].msgId).toBe(first.envelopes[0].msgId);
    });

    it('differs when the events differ', () => {
      const ids = [[event('1'), event('2')], [event('1'), event('3')], [event('1')], [event('1', { source: 'other' }), event('2')]].map(
        (events) => accepted(prepareEvents(events, options)).envelopes[0].msgId,
      );
      expect(new Set(ids).size).toBe(ids.length);
    });

    it('does not confuse source "a" + id "bc" with source "ab" + id "c"', () => {
      const one = accepted(prepareEvents([event('bc', { source: 'a', partitionkey: 'k' })], options));
      const two = accepted(prepareEvents([event('c', { source: 'ab', partitionkey: 'k' })], options));
      expect(one.envelopes[0].msgId).not.toBe(two.envelopes[0].msgId);
    });
  });

  describe('defaultType', () => {
    it('gives its type to an event without one', () => {
      const { type: _omit, ...untyped } = event('1');
      const r = accepted(prepareEvents([untyped], { ...options, defaultType: 'sensor.reading' }));
      expect(r.events[0].type).toBe('sensor.reading');
      expect(r.envelopes[0].subject).toBe(`mesh.ingest.${partitionOf('shop', P)}.sensor.reading`);
    });

    it('leaves the type of an event that has one', () => {
      const r = accepted(prepareEvents([event('1')], { ...options, defaultType: 'sensor.reading' }));
      expect(r.events[0].type).toBe('order.created');
    });

    it('is not used when absent: an event without type is rejected', () => {
      const { type: _omit, ...untyped } = event('1');
      const result = prepareEvents([untyped], options);
      if (result.ok) throw new Error('expected a problem');
      expect(result.problems).toEqual([expect.objectContaining({ index: 0, attribute: 'type' })]);
    });
  });
});
