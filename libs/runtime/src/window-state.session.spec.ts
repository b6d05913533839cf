/**
 * Session windows on virtual time: each case feeds a key's events (event
 * times in seconds after T0) one at a time, as the worker does (apply, then
 * close what is due), and states the sessions that result.
 */
import type { CloudEvent } from '@mesh/contracts';
import { defineAggregation } from './aggregation';
import { PartitionWindows, type WindowResult } from './window-state';

const T0 = Date.parse('2026-02-01T10:00:00.000Z');
const GAP_S = 30;
const s = (seconds: number) => T0 + seconds * 1000;
const iso = (seconds: number) => new Date(s(seconds)).toISOString();

const sessions = defineAggregation<{ count: number; sum: number }, { amount: number }>({
  name: 'sessions',
  window: { kind: 'session', gapMs: GAP_S * 1000 },
  init: () => ({ count: 0, sum: 0 }),
  add(acc, event) {
    acc.count += 1;
    acc.sum += event.data!.amount;
    return acc;
  },
  merge(a, b) {
    a.count += b.count;
    a.sum += b.sum;
    return a;
  },
});

let n = 0;
function ev(key: string, seconds: number, amount: number): CloudEvent {
  n++;
  return { specversion: '1.0', id: `e-${n}`, source: 'test', type: 'order.validated', time: iso(seconds), partitionkey: key, data: { amount } };
}

/** [start s, end s, closed, count, sum] */
type Session = [number, number, boolean, number, number];

function sessionsOf(w: PartitionWindows, key: string): Session[] {
  const r: WindowResult | undefined = w.takeDirty().find((x) => x.key === key);
  return (r?.windows ?? []).map((x) => [(Date.parse(x.start) - T0) / 1000, (Date.parse(x.end) - T0) / 1000, x.closed, x.count as number, x.sum as number]);
}

/** Feed [seconds, amount] events of key `k` one by one; returns the late ones' indexes. */
function feed(w: PartitionWindows, events: [number, number][]): number[] {
  const late: number[] = [];
  events.forEach(([at, amount], i) => {
    if (w.apply(ev('k', at, amount), T0).length > 0) late.push(i);
    w.closeDue();
  });
  return late;
}

describe('session windows', () => {
  it.each<{ case: string; latenessS: number; events: [number, number][]; sessions: Session[]; late?: number[] }>([
    { case: 'one event opens a session that ends a gap after it', latenessS: 5, events: [[0, 1]], sessions: [[0, 30, false, 1, 1]] },
    {
      case: 'events closer than the gap extend one session, its end a gap after the last',
      latenessS: 5,
      events: [
        [0, 1],
        [10, 2],
        [35, 4],
      ],
      sessions: [[0, 65, false, 3, 7]],
    },
    {
      case: 'a chain of events each closer than the gap to the last is one session, however long',
      latenessS: 60,
      events: [
        [0, 1],
        [29, 2],
        [58, 4],
        [87, 8],
      ],
      sessions: [[0, 117, false, 4, 15]],
    },
    {
      case: 'an event exactly the gap after the last one is a new session',
      latenessS: 60,
      events: [
        [0, 1],
        [30, 2],
      ],
      sessions: [
        [0, 30, false, 1, 1],
        [30, 60, false, 1, 2],
      ],
    },
    {
      case: 'an out-of-order event within the gap before a session extends it backwards',
      latenessS: 60,
      events: [
        [40, 1],
        [15, 2],
      ],
      sessions: [[15, 70, false, 2, 3]],
    },
    {
      case: 'a late event within the gap of two sessions merges them into one',
      latenessS: 60,
      events: [
        [0, 1],
        [50, 2],
        [60, 4],
        [25, 8],
      ],
      sessions: [[0, 90, false, 4, 15]],
    },
    {
      case: 'a late event bridging three sessions merges all of them',
      latenessS: 120,
      events: [
        [0, 1],
        [40, 2],
        [80, 4],
        [20, 8],
        [60, 16],
      ],
      sessions: [[0, 110, false, 5, 31]],
    },
    {
      case: 'a late event inside a session only adds to it',
      latenessS: 60,
      events: [
        [0, 1],
        [20, 2],
        [10, 4],
      ],
      sessions: [[0, 50, false, 3, 7]],
    },
    {
      case: 'a session closes when the watermark passes its end, and the next one stays open',
      latenessS: 5,
      events: [
        [0, 1],
        [100, 2],
      ],
      sessions: [
        [0, 30, true, 1, 1],
        [100, 130, false, 1, 2],
      ],
    },
    {
      case: 'an event whose own session would end at or before the watermark is late and counts nowhere',
      latenessS: 5,
      events: [
        [0, 1],
        [100, 2],
        [64, 4],
      ],
      sessions: [
        [0, 30, true, 1, 1],
        [100, 130, false, 1, 2],
      ],
      late: [2],
    },
    {
      case: 'an event within the gap of a closed session is late: a closed session is final',
      latenessS: 5,
      events: [
        [0, 1],
        [40, 2],
        [20, 4],
      ],
      sessions: [
        [0, 30, true, 1, 1],
        [40, 70, false, 1, 2],
      ],
      late: [2],
    },
    {
      case: 'an event just past the gap of a closed session opens a session of its own',
      latenessS: 5,
      events: [
        [0, 1],
        [40, 2],
        [30, 4],
      ],
      sessions: [
        [0, 30, true, 1, 1],
        [30, 70, false, 2, 6],
      ],
    },
  ])('$case', ({ latenessS, events, sessions: expected, late = [] }) => {
    const w = new PartitionWindows([sessions], { defaultLatenessMs: latenessS * 1000, retainClosed: 10 });
    expect(feed(w, events)).toEqual(late);
    w.markAllDirty();
    expect(sessionsOf(w, 'k')).toEqual(expected);
    expect(w.lateCount('sessions')).toBe(late.length);
  });

  it('returns a closed session from closeDue once, with its merged total', () => {
    const w = new PartitionWindows([sessions], { defaultLatenessMs: 60_000, retainClosed: 10 });
    for (const [at, amount] of [
      [0, 1],
      [50, 2],
      [25, 4],
    ])
      w.apply(ev('k', at, amount), T0);
    expect(w.closeDue()).toEqual([]);
    w.apply(ev('other', 200, 1), T0);
    const closed = w.closeDue();
    expect(closed.map((c) => [c.key, c.cell.start, c.cell.end, c.cell.acc])).toEqual([['k', s(0), s(80), { count: 3, sum: 7 }]]);
    expect(w.closeDue()).toEqual([]);
  });

  it('keeps sessions apart per key', () => {
    const w = new PartitionWindows([sessions], { defaultLatenessMs: 5_000, retainClosed: 10 });
    w.apply(ev('a', 0, 1), T0);
    w.apply(ev('b', 10, 2), T0);
    w.apply(ev('a', 20, 4), T0);
    const r = w.takeDirty();
    expect(r.find((x) => x.key === 'a')!.windows).toEqual([{ start: iso(0), end: iso(50), closed: false, count: 2, sum: 5 }]);
    expect(r.find((x) => x.key === 'b')!.windows).toEqual([{ start: iso(10), end: iso(40), closed: false, count: 1, sum: 2 }]);
  });

  it('restores sessions from a checkpoint and merges into them as a run that never stopped', () => {
    const opts = { defaultLatenessMs: 60_000, retainClosed: 10 };
    const unstopped = new PartitionWindows([sessions], opts);
    const first = new PartitionWindows([sessions], opts);
    for (const w of [unstopped, first])
      for (const [at, amount] of [
        [0, 1],
        [50, 2],
      ])
        w.apply(ev('k', at, amount), T0);
    const restored = new PartitionWindows([sessions], opts);
    restored.restore(JSON.parse(first.snapshotJson()));
    for (const w of [unstopped, restored]) w.apply(ev('k', 25, 4), T0);
    expect(restored.snapshot()).toEqual(unstopped.snapshot());
    expect(sessionsOf(restored, 'k')).toEqual([[0, 80, false, 3, 7]]);
  });
});
