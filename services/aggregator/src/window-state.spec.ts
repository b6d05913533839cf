import type { CloudEvent } from '@mesh/contracts';
import totals from './aggregations/totals.aggregation';
import {
  CheckpointChunks,
  chunkOf,
  PartitionWindows,
  type Snapshot,
  type SnapshotChunk,
  type SnapshotMeta,
  type WindowOptions,
  type WindowResult,
  defineAggregation,
} from '@mesh/runtime';

const MINUTE = 60_000;
const T0 = Date.parse('2026-02-01T10:00:00.000Z');
const LATENESS = 5_000;
const options: WindowOptions = { defaultLatenessMs: LATENESS, retainClosed: 10 };

let seq = 0;
/** A processed event at `T0 + offsetMs` for `key`, with `data` (default `{ amount }` when a number is given). */
function ev(key: string, offsetMs: number, amount?: unknown, extra: Partial<CloudEvent> = {}): CloudEvent {
  seq++;
  return {
    specversion: '1.0',
    id: `e-${seq}`,
    source: 'test',
    type: 'order.validated',
    time: new Date(T0 + offsetMs).toISOString(),
    partitionkey: key,
    ...(amount === undefined ? {} : { data: { amount } }),
    ...extra,
  };
}

const iso = (offsetMs: number) => new Date(T0 + offsetMs).toISOString();

function windowsOf(results: WindowResult[], name: string, key: string): WindowResult['windows'] {
  const r = results.find((x) => x.name === name && x.key === key);
  if (!r) throw new Error(`no result for ${name}/${key} among ${JSON.stringify(results.map((x) => `${x.name}/${x.key}`))}`);
  return r.windows;
}

function feed(w: PartitionWindows, events: CloudEvent[]): string[][] {
  return events.map((e) => w.apply(e, T0));
}

const hopping = defineAggregation({
  name: 'hopping-count',
  window: { kind: 'hopping', sizeMs: MINUTE, hopMs: 20_000 },
  init: () => ({ count: 0 }),
  add(acc, _event) {
    acc.count += 1;
    return acc;
  },
});

describe('PartitionWindows with the totals aggregation', () => {
  it('puts events in the one-minute window of their event time', () => {
    const w = new PartitionWindows([totals], options);
    feed(w, [ev('a', 0, 1), ev('a', 59_999, 2), ev('a', MINUTE, 4), ev('a', 2 * MINUTE + 30_000, 8)]);
    expect(windowsOf(w.takeDirty(), 'totals', 'a')).toEqual([
      { start: iso(0), end: iso(MINUTE), closed: false, count: 2, sum: 3 },
      { start: iso(MINUTE), end: iso(2 * MINUTE), closed: false, count: 1, sum: 4 },
      { start: iso(2 * MINUTE), end: iso(3 * MINUTE), closed: false, count: 1, sum: 8 },
    ]);
  });

  it('keeps the windows sorted by start when events arrive out of order', () => {
    const w = new PartitionWindows([totals], options);
    feed(w, [ev('a', MINUTE + 1_000, 1), ev('a', 1_000, 1)]);
    expect(windowsOf(w.takeDirty(), 'totals', 'a').map((x) => x.start)).toEqual([iso(0), iso(MINUTE)]);
  });

  it('keeps separate windows per partition key', () => {
    const w = new PartitionWindows([totals], options);
    feed(w, [ev('a', 0, 1), ev('b', 0, 10), ev('a', 1_000, 2)]);
    const r = w.takeDirty();
    expect(windowsOf(r, 'totals', 'a')).toEqual([expect.objectContaining({ count: 2, sum: 3 })]);
    expect(windowsOf(r, 'totals', 'b')).toEqual([expect.objectContaining({ count: 1, sum: 10 })]);
  });

  it('counts and sums exactly', () => {
    const w = new PartitionWindows([totals], options);
    const amounts = [1250, -300, 7, 0, 99_999, 42.5];
    feed(
      w,
      amounts.map((a, i) => ev('a', i * 1_000, a)),
    );
    expect(windowsOf(w.takeDirty(), 'totals', 'a')).toEqual([expect.objectContaining({ count: 6, sum: 100_998.5 })]);
  });

  it('counts events without a numeric amount but adds nothing for them', () => {
    const w = new PartitionWindows([totals], options);
    feed(w, [ev('a', 0, 5), ev('a', 1_000), ev('a', 2_000, '7'), ev('a', 3_000, null), ev('a', 4_000, undefined, { data: 'text' })]);
    expect(windowsOf(w.takeDirty(), 'totals', 'a')).toEqual([expect.objectContaining({ count: 5, sum: 5 })]);
  });

  it('uses the fallback time for an event without time', () => {
    const w = new PartitionWindows([totals], options);
    const { time: _t, ...untimed } = ev('a', 0, 1);
    expect(w.apply(untimed, T0 + 3 * MINUTE + 5)).toEqual([]);
    expect(windowsOf(w.takeDirty(), 'totals', 'a').map((x) => x.start)).toEqual([iso(3 * MINUTE)]);
  });

  describe('late events', () => {
    it('does not add an event whose window ends before max event time minus the lateness, and reports it', () => {
      const w = new PartitionWindows([totals], options);
      feed(w, [ev('a', 10_000, 1), ev('a', MINUTE + 30_000, 1)]);
      w.takeDirty();
      expect(w.apply(ev('a', 20_000, 100), T0)).toEqual(['totals']);
      expect(w.lateCount('totals')).toBe(1);
      expect(w.takeDirty()).toEqual([]);
      w.apply(ev('a', MINUTE + 30_001, 0), T0);
      expect(windowsOf(w.takeDirty(), 'totals', 'a')[0]).toEqual(expect.objectContaining({ start: iso(0), count: 1, sum: 1 }));
    });

    it('calls an event late when its window ends exactly at the watermark', () => {
      const w = new PartitionWindows([totals], options);
      w.apply(ev('a', MINUTE + LATENESS, 1), T0);
      expect(w.watermark('totals')).toBe(T0 + MINUTE);
      expect(w.apply(ev('a', 59_999, 1), T0)).toEqual(['totals']);
    });

    it('still adds an event whose window ends just after the watermark', () => {
      const w = new PartitionWindows([totals], options);
      w.apply(ev('a', MINUTE + LATENESS - 1, 1), T0);
      expect(w.apply(ev('a', 59_999, 1), T0)).toEqual([]);
      expect(w.lateCount('totals')).toBe(0);
      expect(windowsOf(w.takeDirty(), 'totals', 'a')[0]).toEqual(expect.objectContaining({ start: iso(0), count: 1, sum: 1 }));
    });

    it("uses the aggregation's own allowed lateness over the default", () => {
      const strict = defineAggregation({ ...totals, name: 'strict', allowedLatenessMs: 0 });
      const w = new PartitionWindows([totals, strict], options);
      w.apply(ev('a', MINUTE + 1_000, 1), T0);
      expect(w.apply(ev('a', 59_000, 1), T0)).toEqual(['strict']);
      expect(w.lateCount('strict')).toBe(1);
      expect(w.lateCount('totals')).toBe(0);
    });

    it('shares one watermark across keys: an old event of a quiet key is late', () => {
      const w = new PartitionWindows([totals], options);
      w.apply(ev('a', 3 * MINUTE, 1), T0);
      expect(w.apply(ev('b', 0, 1), T0)).toEqual(['totals']);
    });
  });

  describe('closeDue', () => {
    it('closes a window once the watermark reaches its end, and returns it only once', () => {
      const w = new PartitionWindows([totals], options);
      feed(w, [ev('a', 1_000, 3), ev('a', MINUTE + LATENESS - 1, 0)]);
      expect(w.closeDue()).toEqual([]);
      w.apply(ev('a', MINUTE + LATENESS, 0), T0);
      const closed = w.closeDue();
      expect(closed).toEqual([{ name: 'totals', key: 'a', cell: { start: T0, end: T0 + MINUTE, closed: true, acc: { count: 1, sum: 3 } } }]);
      expect(w.closeDue()).toEqual([]);
      w.apply(ev('a', MINUTE + LATENESS + 10_000, 0), T0);
      expect(w.closeDue()).toEqual([]);
    });

    it('marks the closed window in the results and the key as changed', () => {
      const w = new PartitionWindows([totals], options);
      feed(w, [ev('a', 1_000, 3), ev('b', 2 * MINUTE, 1)]);
      w.takeDirty();
      expect(w.closeDue().map((c) => c.key)).toEqual(['a']);
      expect(w.takeDirty()).toEqual([{ name: 'totals', key: 'a', windows: [{ start: iso(0), end: iso(MINUTE), closed: true, count: 1, sum: 3 }] }]);
    });

    it('closes the windows of every key the watermark has passed', () => {
      const w = new PartitionWindows([totals], options);
      feed(w, [ev('a', 0, 1), ev('b', 0, 1), ev('a', MINUTE, 1), ev('c', 5 * MINUTE, 1)]);
      expect(
        w
          .closeDue()
          .map((c) => `${c.key}@${c.cell.start - T0}`)
          .sort(),
      ).toEqual(['a@0', `a@${MINUTE}`, 'b@0']);
    });
  });

  describe('takeDirty', () => {
    it('returns only the keys changed since the last call', () => {
      const w = new PartitionWindows([totals], options);
      feed(w, [ev('a', 0, 1), ev('b', 0, 1)]);
      expect(
        w
          .takeDirty()
          .map((r) => r.key)
          .sort(),
      ).toEqual(['a', 'b']);
      expect(w.takeDirty()).toEqual([]);
      w.apply(ev('b', 1_000, 1), T0);
      expect(w.takeDirty().map((r) => r.key)).toEqual(['b']);
    });

    it('returns a key once however many of its events arrived', () => {
      const w = new PartitionWindows([totals], options);
      feed(w, [ev('a', 0, 1), ev('a', 1_000, 1), ev('a', MINUTE, 1)]);
      expect(w.takeDirty()).toHaveLength(1);
    });
  });

  describe('retainClosed', () => {
    it('keeps only the newest closed windows of a key, and every open one', () => {
      const w = new PartitionWindows([totals], { ...options, retainClosed: 2 });
      feed(
        w,
        [0, 1, 2, 3, 4].map((m) => ev('a', m * MINUTE + 1_000, m)),
      );
      // Watermark = 4m + 1s - 5s: the windows of minutes 0, 1 and 2 are due.
      expect(w.closeDue()).toHaveLength(3);
      expect(windowsOf(w.takeDirty(), 'totals', 'a').map((x) => [x.start, x.closed, x.sum])).toEqual([
        [iso(MINUTE), true, 1],
        [iso(2 * MINUTE), true, 2],
        [iso(3 * MINUTE), false, 3],
        [iso(4 * MINUTE), false, 4],
      ]);
    });

    it('drops every closed window when it is 0', () => {
      const w = new PartitionWindows([totals], { ...options, retainClosed: 0 });
      feed(w, [ev('a', 0, 1), ev('a', 2 * MINUTE, 2)]);
      expect(w.closeDue()).toHaveLength(1);
      expect(windowsOf(w.takeDirty(), 'totals', 'a').map((x) => x.start)).toEqual([iso(2 * MINUTE)]);
    });
  });

  describe('snapshot and restore', () => {
    /** Events of three keys, partly out of order, with late ones and ones without amount. */
    function stream(): CloudEvent[] {
      seq = 0;
      const out: CloudEvent[] = [];
      for (let i = 0; i < 120; i++) {
        const key = ['a', 'b', 'c'][i % 3];
        const jitter = ((i * 7919) % 11) * 1_000 - 5_000;
        const late = i % 17 === 0 ? -2 * MINUTE : 0;
        out.push(ev(key, i * 5_000 + jitter + late, i % 5 === 0 ? undefined : i));
      }
      return out;
    }

    type Step = { late: string[][]; closed: unknown[]; results: WindowResult[] };

    /** Feeds events in batches as the worker does: apply, close due windows, take changed results. */
    function run(w: PartitionWindows, events: CloudEvent[], batch = 7): Step[] {
      const steps: Step[] = [];
      for (let i = 0; i < events.length; i += batch) {
        const late = feed(w, events.slice(i, i + batch));
        w.lastSeq += late.length;
        steps.push({ late, closed: w.closeDue(), results: w.takeDirty() });
      }
      return steps;
    }

    it('gives, after a restore, the same results as a run that never stopped', () => {
      const events = stream();
      const [before, after] = [events.slice(0, 63), events.slice(63)];
      const defs = [totals, hopping];
      const opts = { ...options, retainClosed: 3 };

      const unstopped = new PartitionWindows(defs, opts);
      run(unstopped, before);
      const expected = run(unstopped, after);

      const first = new PartitionWindows(defs, opts);
      run(first, before);
      const saved = JSON.parse(JSON.stringify(first.snapshot())) as Snapshot;
      const restarted = new PartitionWindows(defs, opts);
      restarted.restore(saved);
      expect(restarted.lastSeq).toBe(63);
      const actual = run(restarted, after);

      expect(actual).toEqual(expected);
      expect(restarted.snapshot()).toEqual(unstopped.snapshot());
      expect(restarted.lateCount('totals')).toBe(unstopped.lateCount('totals'));
      // The stream is meant to exercise lateness and closing; make sure it does.
      expect(unstopped.lateCount('totals')).toBeGreaterThan(0);
      expect(expected.some((s) => s.closed.length > 0)).toBe(true);
    });

    it('serializes, after every batch, the same checkpoint JSON as the whole snapshot, from cached keys', () => {
      const events = stream();
      const opts = { ...options, retainClosed: 2 };
      const w = new PartitionWindows([totals, hopping], opts);
      expect(w.snapshotJson()).toBe(JSON.stringify(w.snapshot()));
      let closedSome = false;
      for (let i = 0; i < events.length; i += 5) {
        w.lastSeq += feed(w, events.slice(i, i + 5)).length;
        closedSome ||= w.closeDue().length > 0;
        w.takeDirty();
        expect(w.snapshotJson()).toBe(JSON.stringify(w.snapshot()));
      }
      expect(closedSome).toBe(true);
      const restored = new PartitionWindows([totals, hopping], opts);
      restored.restore(JSON.parse(w.snapshotJson()) as Snapshot);
      expect(restored.snapshotJson()).toBe(w.snapshotJson());
      // The restored instance closes what is due, as the original would.
      const next = ev('a', 200 * MINUTE, 1);
      feed(w, [next]);
      feed(restored, [next]);
      expect(restored.closeDue()).toEqual(w.closeDue());
      expect(restored.snapshotJson()).toBe(JSON.stringify(w.snapshot()));
    });

    it('splits the checkpoint into chunks from which the same state is restored, and names the chunks whose keys changed', () => {
      const events = stream();
      const opts = { ...options, retainClosed: 2 };
      const w = new PartitionWindows([totals, hopping], opts);
      w.trackChunks(false);
      expect(w.takeDirtyChunks()).toEqual([]);
      for (let i = 0; i < events.length; i += 5) {
        const batch = events.slice(i, i + 5);
        feed(w, batch);
        w.lastSeq++;
        const closed = w.closeDue();
        const changedKeys = new Set([...batch.map((e) => e.partitionkey!), ...closed.map((c) => c.key)]);
        expect(w.takeDirtyChunks()).toEqual([...new Set([...changedKeys].map(chunkOf))].sort((a, b) => a - b));
      }
      const restored = new PartitionWindows([totals, hopping], opts);
      restored.restoreMeta(JSON.parse(w.snapshotMetaJson()) as SnapshotMeta);
      for (let c = 0; c < CheckpointChunks; c++) restored.restoreChunk(JSON.parse(w.chunkJson(c)) as SnapshotChunk);
      expect(restored.snapshot()).toEqual(w.snapshot());
      expect(restored.snapshotJson().length).toBe(w.snapshotJson().length);
      // The same continuation closes the same windows (keys come back chunk by chunk, so in another order).
      const next = ev('a', 200 * MINUTE, 1);
      feed(w, [next]);
      feed(restored, [next]);
      const byKey = (closed: ReturnType<PartitionWindows['closeDue']>) =>
        [...closed].sort((x, y) => `${x.name}/${x.key}/${x.cell.start}`.localeCompare(`${y.name}/${y.key}/${y.cell.start}`));
      const closedNow = w.closeDue();
      expect(closedNow.length).toBeGreaterThan(0);
      expect(byKey(restored.closeDue())).toEqual(byKey(closedNow));
      w.trackChunks(true);
      expect(w.takeDirtyChunks()).toHaveLength(CheckpointChunks);
    });

    it('gives, as JSON, the same results as takeDirty, closed windows included', () => {
      const events = stream();
      const opts = { ...options, retainClosed: 2 };
      const [a, b] = [new PartitionWindows([totals, hopping], opts), new PartitionWindows([totals, hopping], opts)];
      let closed = 0;
      for (let i = 0; i < events.length; i += 4) {
        for (const w of [a, b]) feed(w, events.slice(i, i + 4));
        closed += a.closeDue().length;
        b.closeDue();
        const expected = a.takeDirty().map((r) => ({ name: r.name, key: r.key, json: JSON.stringify(r) }));
        expect(b.takeDirtyJson()).toEqual(expected);
      }
      expect(closed).toBeGreaterThan(0);
    });

    it('restores the state of a fresh instance as a fresh instance', () => {
      const saved = JSON.parse(JSON.stringify(new PartitionWindows([totals], options).snapshot())) as Snapshot;
      const restored = new PartitionWindows([totals], options);
      restored.restore(saved);
      expect(restored.apply(ev('a', -10 * MINUTE, 1), T0)).toEqual([]);
      expect(restored.snapshot()).toEqual(
        (() => {
          const fresh = new PartitionWindows([totals], options);
          fresh.apply(ev('a', -10 * MINUTE, 1), T0);
          return fresh.snapshot();
        })(),
      );
    });

    it('ignores the saved state of an aggregation that no longer exists', () => {
      const w = new PartitionWindows([totals, hopping], options);
      w.apply(ev('a', 0, 1), T0);
      const saved = JSON.parse(JSON.stringify(w.snapshot())) as Snapshot;
      const onlyTotals = new PartitionWindows([totals], options);
      onlyTotals.restore(saved);
      expect(Object.keys(onlyTotals.snapshot().aggregations)).toEqual(['totals']);
      expect(onlyTotals.snapshot().aggregations.totals).toEqual(saved.aggregations.totals);
    });

    it('keeps a watermark from before 1970 across a restore', () => {
      const early = Date.parse('1969-12-31T23:00:00Z');
      const at = (ms: number) => ({ ...ev('a', 0, 1), time: new Date(ms).toISOString() });
      const w = new PartitionWindows([totals], options);
      w.apply(at(early), 0);
      const restored = new PartitionWindows([totals], options);
      restored.restore(JSON.parse(JSON.stringify(w.snapshot())) as Snapshot);
      expect(restored.watermark('totals')).toBe(w.watermark('totals'));
      const tooLate = at(early - 10 * MINUTE);
      expect(restored.apply(tooLate, 0)).toEqual(w.apply(tooLate, 0));
    });
  });
});

describe('PartitionWindows with a hopping aggregation', () => {
  it('puts one event in size/hop windows, each covering its time', () => {
    const w = new PartitionWindows([hopping], options);
    w.apply(ev('a', 30_000), T0);
    expect(windowsOf(w.takeDirty(), 'hopping-count', 'a')).toEqual([
      { start: iso(-20_000), end: iso(40_000), closed: false, count: 1 },
      { start: iso(0), end: iso(MINUTE), closed: false, count: 1 },
      { start: iso(20_000), end: iso(80_000), closed: false, count: 1 },
    ]);
  });

  it('puts an event on a hop boundary in the window starting there but not the one ending there', () => {
    const w = new PartitionWindows([hopping], options);
    w.apply(ev('a', 40_000), T0);
    expect(windowsOf(w.takeDirty(), 'hopping-count', 'a').map((x) => [x.start, x.end])).toEqual([
      [iso(-0), iso(MINUTE)],
      [iso(20_000), iso(80_000)],
      [iso(40_000), iso(100_000)],
    ]);
  });

  it.each([
    [60_000, 20_000, 3],
    [60_000, 15_000, 4],
    [60_000, 60_000, 1],
    [60_000, 1_000, 60],
  ])('with size %i and hop %i puts each event in %i windows', (sizeMs, hopMs, windows) => {
    const agg = defineAggregation({ ...hopping, window: { kind: 'hopping', sizeMs, hopMs } });
    const w = new PartitionWindows([agg], options);
    for (let i = 0; i < 10; i++) w.apply(ev('a', i * 3_333), T0);
    const cells = windowsOf(w.takeDirty(), 'hopping-count', 'a') as unknown as { start: string; end: string; count: number }[];
    const total = cells.reduce((s, c) => s + c.count, 0);
    expect(total).toBe(10 * windows);
    for (const c of cells) expect(Date.parse(c.end) - Date.parse(c.start)).toBe(sizeMs);
  });

  it('adds an event to those of its windows still open and is late only when all are closed', () => {
    const w = new PartitionWindows([hopping], { ...options, defaultLatenessMs: 0 });
    w.apply(ev('a', 70_000), T0);
    // Watermark T0+70s: [T0-20s, T0+40s) and [T0, T0+60s) are done; [T0+20s, T0+80s) is open.
    expect(w.apply(ev('a', 30_000), T0)).toEqual([]);
    const open = windowsOf(w.takeDirty(), 'hopping-count', 'a').filter((x) => x.start === iso(20_000));
    expect(open).toEqual([expect.objectContaining({ count: 2 })]);
    expect(w.apply(ev('a', 5_000), T0)).toEqual(['hopping-count']);
  });
});

describe('PartitionWindows with several aggregations', () => {
  it('folds an event only into the aggregations whose types take it, keyed by their own key', () => {
    const byCustomer = defineAggregation<{ n: number }, { customer: string }>({
      name: 'payments-by-customer',
      types: ['payment.*'],
      window: { kind: 'tumbling', sizeMs: MINUTE },
      key: (e) => e.data!.customer,
      init: () => ({ n: 0 }),
      add(acc) {
        acc.n += 1;
        return acc;
      },
    });
    const w = new PartitionWindows([totals, byCustomer], options);
    w.apply(ev('k', 0, undefined, { type: 'payment.received', data: { customer: 'c-1' } }), T0);
    w.apply(ev('k', 0, 5), T0);
    const r = w.takeDirty();
    expect(windowsOf(r, 'totals', 'k')).toEqual([expect.objectContaining({ count: 2 })]);
    expect(windowsOf(r, 'payments-by-customer', 'c-1')).toEqual([expect.objectContaining({ n: 1 })]);
    expect(r).toHaveLength(2);
  });
});
