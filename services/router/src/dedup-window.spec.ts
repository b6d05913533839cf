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

  it('lets an event through again once the window has passed since it was first seen', () => {
    const w = new DedupWindow(WINDOW);
    const key = DedupWindow.keyOf('shop', 'order-1');
    expect(w.seen(key, 1_000)).toBe(false);
    expect(w.seen(key, 1_000 + WINDOW + 1)).toBe(false);
    // ...and it is remembered again from that second sighting.
    expect(w.seen(key, 1_000 + WINDOW + 2)).toBe(true);
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

  it('decides the same for a window rebuilt by replaying the same stream', () => {
    const stream: [string, number][] = [
      ['a', 0], ['b', 1_000], ['a', 5_000], ['c', 9_000], ['b', 11_500], ['a', 12_000], ['c', 30_000], ['c', 30_001],
    ];
    const decide = () => {
      const w = new DedupWindow(WINDOW);
      return stream.map(([id, at]) => w.seen(DedupWindow.keyOf('s', id), at));
    };
    expect(decide()).toEqual([false, false, true, false, false, false, false, true]);
    expect(decide()).toEqual(decide());
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
