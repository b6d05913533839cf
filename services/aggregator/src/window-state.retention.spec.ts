/**
 * MESH_STATE_RETENTION on virtual time, with `totals` (one-minute windows),
 * 5 s of lateness and 10 minutes of retention: a key whose windows have all
 * closed and whose last window ended more than the retention before the
 * watermark is dropped; nothing else is.
 */
import type { CloudEvent } from '@mesh/contracts';
import totals from './aggregations/totals.aggregation';
import { CheckpointChunks, chunkOf, PartitionWindows, type SnapshotChunk, type WindowOptions } from '@mesh/runtime';

const MINUTE = 60_000;
const T0 = Date.parse('2026-02-01T10:00:00.000Z');
const LATENESS = 5_000;
const RETENTION = 10 * MINUTE;
const options: WindowOptions = { defaultLatenessMs: LATENESS, retainClosed: 10, retentionMs: RETENTION };

let n = 0;
function ev(key: string, offsetMs: number, amount = 1): CloudEvent {
  n++;
  return {
    specversion: '1.0',
    id: `e-${n}`,
    source: 'test',
    type: 'order.validated',
    time: new Date(T0 + offsetMs).toISOString(),
    partitionkey: key,
    data: { amount },
  };
}

/** One batch as the worker runs it: apply, close what is due (and sweep), take the changed results. */
function batch(w: PartitionWindows, events: CloudEvent[]) {
  for (const e of events) w.apply(e, T0);
  const closed = w.closeDue();
  return { closed, results: w.takeDirty() };
}

/** The event time at which the watermark is `watermarkMs` after T0. */
const at = (watermarkMs: number) => watermarkMs + LATENESS;
const keysOf = (w: PartitionWindows) => Object.keys(w.snapshot().aggregations.totals.keys).sort();

describe('state retention', () => {
  it('drops a key once its last window ended more than the retention before the watermark, not at exactly the retention', () => {
    const w = new PartitionWindows([totals], options);
    batch(w, [ev('old', 0)]);
    // old's only window ends at 1m: it closes, and stays while the watermark is at most 11m.
    batch(w, [ev('new', at(2 * MINUTE))]);
    batch(w, [ev('new', at(MINUTE + RETENTION))]);
    expect(keysOf(w)).toEqual(['new', 'old']);
    batch(w, [ev('new', at(MINUTE + RETENTION + 1))]);
    expect(keysOf(w)).toEqual(['new']);
    expect(w.keyCount()).toBe(1);
  });

  it('keeps every key for ever without a retention', () => {
    const w = new PartitionWindows([totals], { ...options, retentionMs: undefined });
    batch(w, [ev('old', 0)]);
    batch(w, [ev('new', at(1000 * MINUTE))]);
    expect(keysOf(w)).toEqual(['new', 'old']);
  });

  it('keeps a key with a window still open, and never drops a window before it was closed and its result taken', () => {
    const w = new PartitionWindows([totals], options);
    // No close between the two events: old's window [0, 1m) is long past, but not closed yet.
    w.apply(ev('old', 0), T0);
    w.apply(ev('other', at(30 * MINUTE)), T0);
    w.apply(ev('old', at(30 * MINUTE), 2), T0);
    const { closed, results } = batch(w, []);
    // The old window closes now, with its count, and its result goes out closed; the key stays (its new window is open).
    expect(closed.map((c) => [c.key, c.cell.start, c.cell.acc])).toEqual([['old', T0, { count: 1, sum: 1 }]]);
    expect(results.find((r) => r.key === 'old')!.windows.map((x) => [x.closed, x.count])).toEqual([
      [true, 1],
      [false, 1],
    ]);
    expect(keysOf(w)).toEqual(['old', 'other']);
  });

  it('writes the final result of a key closed past its retention before it drops it', () => {
    const w = new PartitionWindows([totals], options);
    batch(w, [ev('old', 0, 7)]);
    // The watermark jumps 30 minutes: old's window closes in this batch, already past retention.
    const { results } = batch(w, [ev('new', at(30 * MINUTE))]);
    expect(results.find((r) => r.key === 'old')!.windows).toEqual([expect.objectContaining({ closed: true, count: 1, sum: 7 })]);
    expect(keysOf(w)).toEqual(['new', 'old']);
    // The next sweep, a sixteenth of the retention on, drops it, and has no result of it to write.
    const later = batch(w, [ev('new', at(30 * MINUTE + RETENTION / 16 + 1))]);
    expect(keysOf(w)).toEqual(['new']);
    expect(later.results.map((r) => r.key)).toEqual(['new']);
  });

  it('starts a key afresh when an event of it comes after it was dropped', () => {
    const w = new PartitionWindows([totals], options);
    batch(w, [ev('old', 0, 7)]);
    batch(w, [ev('new', at(30 * MINUTE))]);
    batch(w, [ev('new', at(40 * MINUTE))]);
    expect(keysOf(w)).toEqual(['new']);
    const { results } = batch(w, [ev('old', at(40 * MINUTE), 3)]);
    expect(results.find((r) => r.key === 'old')!.windows).toEqual([expect.objectContaining({ closed: false, count: 1, sum: 3 })]);
  });

  it('treats a key past retention as gone before any sweep, so results do not depend on when sweeps run', () => {
    const w = new PartitionWindows([totals], options);
    batch(w, [ev('old', 0, 7)]);
    // At 12m the window has closed (result taken) and old is past retention, but the sweep leaves it (it was just closed).
    batch(w, [ev('new', at(12 * MINUTE))]);
    expect(keysOf(w)).toEqual(['new', 'old']);
    // 10 s later no sweep is due, yet old's next event finds it gone.
    const { results } = batch(w, [ev('old', at(12 * MINUTE + 10_000), 3)]);
    expect(results.find((r) => r.key === 'old')!.windows).toEqual([expect.objectContaining({ closed: false, count: 1, sum: 3 })]);
  });

  it("drops the key from the checkpoint: snapshot, snapshot JSON and the key's chunk, which is marked for rewriting", () => {
    const w = new PartitionWindows([totals], options);
    batch(w, [ev('old', 0), ev('kept', at(5 * MINUTE))]);
    w.trackChunks(false);
    expect(w.takeDirtyChunks()).toEqual([]);
    // old's window ended at 1m: at 11m + 1 ms of watermark it is past retention.
    batch(w, [ev('kept', at(11 * MINUTE + 1))]);
    expect(w.takeDirtyChunks()).toContain(chunkOf('old'));
    const chunk = JSON.parse(w.chunkJson(chunkOf('old'))) as SnapshotChunk;
    expect(chunk.totals?.old).toBeUndefined();
    expect(Object.keys(w.snapshot().aggregations.totals.keys)).toEqual(['kept']);
    expect(w.snapshotJson()).toBe(JSON.stringify(w.snapshot()));
    const everyChunk = Array.from({ length: CheckpointChunks }, (_, c) => JSON.parse(w.chunkJson(c)) as SnapshotChunk);
    expect(everyChunk.flatMap((c) => Object.keys(c.totals ?? {}))).toEqual(['kept']);
  });

  it('drops, after a restore, the same keys as a run that never stopped', () => {
    const feedA = [[ev('a', 0)], [ev('b', at(3 * MINUTE))], [ev('c', at(9 * MINUTE))]];
    const feedB = [[ev('c', at(13 * MINUTE))], [ev('c', at(15 * MINUTE))], [ev('c', at(25 * MINUTE))]];
    const unstopped = new PartitionWindows([totals], options);
    const first = new PartitionWindows([totals], options);
    for (const b of feedA) for (const w of [unstopped, first]) batch(w, b);
    const restored = new PartitionWindows([totals], options);
    restored.restore(JSON.parse(first.snapshotJson()));
    const seen: string[][] = [];
    for (const b of feedB) {
      batch(unstopped, b);
      batch(restored, b);
      seen.push(keysOf(restored));
      expect(keysOf(restored)).toEqual(keysOf(unstopped));
    }
    expect(seen).toEqual([['b', 'c'], ['c'], ['c']]);
  });

  it('holds about retention plus a sixteenth of it of keys while new keys keep coming', () => {
    const w = new PartitionWindows([totals], options);
    const sizes: number[] = [];
    // One new key every 10 s of event time for two hours: 6 keys a minute.
    for (let i = 0; i < 720; i++) {
      batch(w, [ev(`k${i}`, i * 10_000)]);
      if (i % 60 === 59) sizes.push(w.keyCount());
    }
    // Kept: keys whose window ended within retention + lateness + one window + one sweep step of the newest event.
    const bound = Math.ceil(((RETENTION + LATENESS + MINUTE + RETENTION / 16) / MINUTE) * 6) + 6;
    expect(Math.max(...sizes.slice(2))).toBeLessThanOrEqual(bound);
    expect(Math.min(...sizes.slice(2))).toBeGreaterThanOrEqual(60);
  });
});
