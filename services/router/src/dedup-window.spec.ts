import { DedupWindow } from './dedup-window';

const WINDOW = 10_000;

describe('DedupWindow', () => {
  it('lets an event through the first time and calls it a duplicate the second time within the window', () => {
    const w = new DedupWindow(WINDOW);
    const key = DedupWindow.keyOf('shop', 'order-1');
    expect(w.seen(key, 1_000)).toBe(false);
    expect(w.seen(key, 1_000)).toBe(true);
    expect(w.seen(key, 1_000 + WINDOW)).toBe(true);
  });

  it('tells different events apart', () => {
    const w = new DedupWindow(WINDOW);
    expect(w.seen(DedupWindow.keyOf('shop', 'order-1'), 1_000)).toBe(false);
    expect(w.seen(DedupWindow.keyOf('shop', 'order-2'), 1_000)).toBe(false);
    expect(w.seen(DedupWindow.keyOf('other', 'order-1'), 1_000)).toBe(false);
  });

  it('lets an event through again once the window has passed since it was last seen', () => {
    const w = new DedupWindow(WINDOW);
    const key = DedupWindow.keyOf('shop', 'order-1');
    expect(w.seen(key, 1_000)).toBe(false);
    expect(w.seen(key, 1_000 + WINDOW + 1)).toBe(false);
    // ...and it is remembered again from that second sighting.
    expect(w.seen(key, 1_000 + WINDOW + 2)).toBe(true);
  });

  it('remembers an id from its latest copy: a copy called a duplicate extends its window', () => {
    const w = new DedupWindow(WINDOW);
    const key = DedupWindow.keyOf('shop', 'order-1');
    expect(w.seen(key, 0)).toBe(false);
    expect(w.seen(key, WINDOW - 1)).toBe(true);
    // More than a window after the first copy, but within one of the last.
    expect(w.seen(key, 2 * WINDOW - 2)).toBe(true);
    expect(w.size).toBe(1);
    expect(w.seen(key, 3 * WINDOW)).toBe(false);
  });

  it('forgets entries older than the window, so its size shrinks', () => {
    const w = new DedupWindow(WINDOW);
    for (let i = 0; i < 5; i++) w.seen(DedupWindow.keyOf('shop', `old-${i}`), 1_000 + i);
    expect(w.size).toBe(5);
    // Only the first three are older than the window at this time.
    w.seen(DedupWindow.keyOf('shop', 'new'), 1_002 + WINDOW + 1);
    expect(w.size).toBe(3);
    w.seen(DedupWindow.keyOf('shop', 'newer'), 100_000);
    expect(w.size).toBe(1);
  });

  it('decides the rest of a stream as the live window does when rebuilt from only the window before a cut (what a new router owner reads)', () => {
    // A stream of (id, time), times advancing unevenly, ids drawn from a pool
    // so that the same id comes again and again: soon (a client's retry),
    // chained (each copy within the window of the one before, long past the
    // first), and after a pause longer than the window (a new event again).
    let random = 7;
    const next = () => (random = (Math.imul(random, 1103515245) + 12345) >>> 0);
    const stream: [string, number][] = [];
    for (let i = 0, at = 0; i < 6_000; i++) {
      at += next() % 40;
      stream.push([`id-${next() % 600}`, at]);
    }
    for (const cut of [500, 1_700, 2_900, 4_800]) {
      const live = new DedupWindow(WINDOW);
      const liveDecisions = stream.map(([id, at]) => live.seen(DedupWindow.keyOf('s', id), at));
      // The new owner replays the events stored in the window before the cut (the ack floor), then goes on live.
      const rebuilt = new DedupWindow(WINDOW);
      const cutAt = stream[cut - 1][1];
      for (const [id, at] of stream.slice(0, cut)) if (at >= cutAt - WINDOW) rebuilt.seen(DedupWindow.keyOf('s', id), at);
      const rebuiltDecisions = stream.slice(cut).map(([id, at]) => rebuilt.seen(DedupWindow.keyOf('s', id), at));
      expect({ cut, decisions: rebuiltDecisions }).toEqual({ cut, decisions: liveDecisions.slice(cut) });
      // Not vacuous: the part decided after the cut has duplicates and first sightings.
      expect(new Set(rebuiltDecisions)).toEqual(new Set([true, false]));
    }
  });

  it('decides as a plain map of keys would, through growth, expiry and shrinking', () => {
    // Reference: a Map of key -> last seen, kept in the order of last sightings.
    const reference = new Map<string, number>();
    const refSeen = (key: string, at: number) => {
      for (const [k, t] of reference) {
        if (t >= at - WINDOW) break;
        reference.delete(k);
      }
      const seen = reference.has(key);
      reference.delete(key);
      reference.set(key, at);
      return seen;
    };
    const w = new DedupWindow(WINDOW, 16);
    let random = 42;
    const next = () => (random = (Math.imul(random, 1103515245) + 12345) >>> 0);
    let at = 0;
    let duplicates = 0;
    for (let i = 0; i < 60_000; i++) {
      // Bursts then quiet stretches, so the window grows past its first capacity and shrinks back.
      at += i % 20_000 < 15_000 ? next() % 2 : 20;
      const key = DedupWindow.keyOf(`src-${next() % 3}`, `id-${next() % 30_000}`);
      const expected = refSeen(key, at);
      if (expected) duplicates++;
      expect(w.seen(key, at)).toBe(expected);
      expect(w.size).toBe(reference.size);
    }
    expect(duplicates).toBeGreaterThan(1_000);
  });

  it('keeps an id in about 24 bytes', () => {
    const w = new DedupWindow(60_000);
    for (let i = 0; i < 100_000; i++) w.seen(DedupWindow.keyOf('shop', `order-${i}`), i / 10);
    expect(w.size).toBe(100_000);
    // 131,072 ring slots of 16 bytes and an index of twice as many 4-byte entries.
    expect(w.bytes).toBeLessThanOrEqual(131_072 * 24);
  });

  describe('keyOf', () => {
    it('does not confuse source "a" + id "bc" with source "ab" + id "c"', () => {
      expect(DedupWindow.keyOf('a', 'bc')).not.toBe(DedupWindow.keyOf('ab', 'c'));
      const w = new DedupWindow(WINDOW);
      expect(w.seen(DedupWindow.keyOf('a', 'bc'), 0)).toBe(false);
      expect(w.seen(DedupWindow.keyOf('ab', 'c'), 0)).toBe(false);
    });

    it('does not confuse a source containing the separator with a shorter one', () => {
      expect(DedupWindow.keyOf('1:a', 'b')).not.toBe(DedupWindow.keyOf('1', ':ab'));
      expect(DedupWindow.keyOf('a', '3:xyz')).not.toBe(DedupWindow.keyOf('a3', ':xyz'));
    });

    it('is the same for the same source and id', () => {
      expect(DedupWindow.keyOf('shop', 'order-1')).toBe(DedupWindow.keyOf('shop', 'order-1'));
    });
  });
});
