import type { CloudEvent } from '@mesh/contracts';
import type { EnvelopeOut } from '@mesh/messaging';
import { EnvelopeBatcher } from './envelope-batcher';

const P = 4;
function ev(id: string, key: string): CloudEvent {
  return { specversion: '1.0', id, source: 's', type: 'order.created', partitionkey: key, data: { amount: 1 } };
}
const sizes = (events: CloudEvent[]) => new Map(events.map((e) => [e, JSON.stringify(e).length]));

describe('EnvelopeBatcher', () => {
  it('packs requests that arrive while a round is in flight into shared envelopes', async () => {
    const published: EnvelopeOut[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const batcher = new EnvelopeBatcher(
      async (e) => {
        published.push(e);
        await gate;
      },
      { partitions: P, maxEvents: 100, maxBytes: 1 << 20, maxInFlight: 1 },
    );

    const first = [ev('a1', 'k')];
    const p1 = batcher.submit(first, sizes(first));
    await new Promise((r) => setImmediate(r));
    expect(published).toHaveLength(1); // the first round went out alone, at once
    const later = Array.from({ length: 5 }, (_, i) => [ev(`b${i}`, 'k')]);
    const waiting = later.map((events) => batcher.submit(events, sizes(events)));
    await new Promise((r) => setImmediate(r));
    expect(published).toHaveLength(1); // held while the first round is in flight
    release();
    await Promise.all([p1, ...waiting]);
    expect(published).toHaveLength(2);
    expect(published[1].events.map((e) => e.id)).toEqual(['b0', 'b1', 'b2', 'b3', 'b4']);
  });

  it('rejects only the requests whose events were in an envelope that could not be stored', async () => {
    const batcher = new EnvelopeBatcher(
      async (e) => {
        if (e.events.some((x) => x.partitionkey === 'bad')) throw new Error('503 no responders');
      },
      { partitions: 1, maxEvents: 1, maxBytes: 1 << 20, maxInFlight: 1 },
    );
    const good = [ev('g', 'good')];
    const bad = [ev('x', 'bad')];
    const results = await Promise.allSettled([batcher.submit(good, sizes(good)), batcher.submit(bad, sizes(bad))]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected']);
    expect((results[1] as PromiseRejectedResult).reason).toEqual(new Error('503 no responders'));
  });

  it('resolves a request only after every envelope holding its events is stored', async () => {
    const stored = new Set<string>();
    const batcher = new EnvelopeBatcher(
      async (e) => {
        await new Promise((r) => setTimeout(r, e.events[0].partitionkey === 'slow' ? 30 : 1));
        for (const x of e.events) stored.add(x.id);
      },
      { partitions: 8, maxEvents: 100, maxBytes: 1 << 20, maxInFlight: 2 },
    );
    const events = [ev('1', 'fast'), ev('2', 'slow')];
    await batcher.submit(events, sizes(events));
    expect([...stored].sort()).toEqual(['1', '2']);
  });

  it('makes envelope bodies from the JSON the events were serialized to, when it is given', async () => {
    const published: EnvelopeOut[] = [];
    const batcher = new EnvelopeBatcher(
      async (e) => {
        published.push(e);
      },
      { partitions: 1, maxEvents: 100, maxBytes: 1 << 20, maxInFlight: 1 },
    );
    const a = [ev('a', 'k')];
    const b = [ev('b', 'k')];
    // Serialized as the request's own text would be, not as JSON.stringify would lay it out.
    const json = (events: CloudEvent[]) => new Map(events.map((e) => [e, JSON.stringify(e, null, 1)]));
    await Promise.all([batcher.submit(a, sizes(a), json(a)), batcher.submit(b, sizes(b), json(b))]);
    expect(published).toHaveLength(1);
    expect(Buffer.from(published[0].body!).toString()).toBe(`[${JSON.stringify(a[0], null, 1)},${JSON.stringify(b[0], null, 1)}]`);
  });
});
