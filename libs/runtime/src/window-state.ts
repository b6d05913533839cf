/**
 * The windows of one partition, by event time. Per aggregation it keeps the
 * largest event time seen; the watermark is that minus the allowed lateness.
 * An event whose windows all end at or before the watermark is late: it is
 * not added and is reported to the caller. A window closes once the
 * watermark passes its end.
 *
 * Session windows: a key's events closer than the gap to one another are one
 * session, from its first event to its last plus the gap. An event within
 * the gap of a session extends it; one within the gap of two sessions (a
 * late event between them) merges them. A closed session is final: an event
 * that would join one is late.
 *
 * Retention: a key whose windows have all closed and whose last window ended
 * more than `retentionMs` before the watermark is dropped (its final result
 * stays in KV, written when its last window closed). Such a key counts as
 * gone at once, however late the sweep that frees its memory comes: an
 * event of it starts the key afresh.
 *
 * Everything depends only on the events and their order, so the state
 * restored from a checkpoint and fed the same events again is the same.
 */
import { eventTimeMs, fnv1a32, partitionKeyOf, typeMatches, type CloudEvent } from '@mesh/contracts';
import type { AggregationDefinition } from './aggregation';

type Acc = Record<string, unknown>;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyAggregation = AggregationDefinition<any, any>;

export interface WindowCell {
  start: number;
  end: number;
  closed: boolean;
  acc: Acc;
}

/** What a cell's result is made of, kept: its times as ISO strings, and its JSON once it is closed (a closed window no longer changes). */
interface CellText {
  start: string;
  end: string;
  json?: string;
}

interface AggregationState {
  maxEventTime: number;
  late: number;
  keys: Map<string, WindowCell[]>;
  /**
   * The earliest end of a window not yet closed (Infinity: none). closeDue
   * scans the keys only once the watermark reaches it, so a batch that
   * closes nothing costs nothing however many keys the partition holds.
   */
  nextEnd: number;
  /**
   * At most the earliest end of a key's last window (Infinity: no key):
   * closeDue sweeps for keys past retention only once the watermark minus
   * the retention passes it, and then no more often than every sixteenth of
   * the retention, so a sweep of every key is paid once per such step.
   */
  evictFloor: number;
  /** Each key's cells as checkpoint JSON, kept until the key changes: a checkpoint re-serializes only what changed. */
  json: Map<string, string>;
}

export interface WindowResult {
  name: string;
  key: string;
  windows: { start: string; end: string; closed: boolean; [field: string]: unknown }[];
}

type SavedCells = [number, number, boolean, Acc][];

/** The whole state of a partition in one document (a checkpoint small enough for one KV value). */
export interface Snapshot {
  v: 1;
  lastSeq: number;
  aggregations: Record<string, { maxEventTime: number | null; late: number; keys: Record<string, SavedCells> }>;
}

/** The state of a partition without its keys' windows, which are saved in chunks (see checkpoint.ts). */
export interface SnapshotMeta {
  lastSeq: number;
  aggregations: Record<string, { maxEventTime: number | null; late: number }>;
}

/** The windows of the keys of one chunk, by aggregation and key. */
export type SnapshotChunk = Record<string, Record<string, SavedCells>>;

/** Chunks a large checkpoint is split into, by a hash of the key: a checkpoint rewrites only the chunks whose keys changed. */
export const CheckpointChunks = 64;

export function chunkOf(key: string): number {
  return fnv1a32(key) % CheckpointChunks;
}

export interface WindowOptions {
  defaultLatenessMs: number;
  retainClosed: number;
  /** Event time a key is kept after its last window ended, all closed (MESH_STATE_RETENTION); default for ever. */
  retentionMs?: number;
}

/** A sweep for keys past retention runs at most once per this fraction of the retention (of event time). */
const SweepSteps = 16;

function windowStarts(def: AnyAggregation, t: number): number[] {
  const w = def.window;
  if (w.kind === 'tumbling') return [Math.floor(t / w.sizeMs) * w.sizeMs];
  if (w.kind === 'session') throw new Error(`windowStarts called for the session aggregation '${def.name}'`);
  const starts: number[] = [];
  for (let s = Math.floor(t / w.hopMs) * w.hopMs; s > t - w.sizeMs; s -= w.hopMs) starts.push(s);
  return starts.reverse();
}

export class PartitionWindows {
  lastSeq = 0;
  private readonly state = new Map<string, AggregationState>();
  private readonly dirty = new Map<string, Set<string>>();
  private readonly text = new WeakMap<WindowCell, CellText>();
  private readonly isoText = new Map<number, string>();
  /**
   * Kept only once the checkpoint is in chunks (trackChunks), so a small
   * state pays nothing per event for it: the keys of each chunk (of any
   * aggregation), and the chunks with a key changed since takeDirtyChunks.
   */
  private chunks?: { keys: Set<string>[]; dirty: Set<number> };

  constructor(
    private readonly defs: readonly AnyAggregation[],
    private readonly o: WindowOptions,
  ) {
    for (const d of defs) {
      this.state.set(d.name, {
        maxEventTime: Number.NEGATIVE_INFINITY,
        late: 0,
        keys: new Map(),
        nextEnd: Number.POSITIVE_INFINITY,
        evictFloor: Number.POSITIVE_INFINITY,
        json: new Map(),
      });
      this.dirty.set(d.name, new Set());
    }
  }

  private lateness(def: AnyAggregation): number {
    return def.allowedLatenessMs ?? this.o.defaultLatenessMs;
  }

  watermark(name: string): number {
    const def = this.defs.find((d) => d.name === name)!;
    return this.state.get(name)!.maxEventTime - this.lateness(def);
  }

  private get retentionMs(): number {
    return this.o.retentionMs ?? Number.POSITIVE_INFINITY;
  }

  /** Fold an event into every aggregation that takes it; returns the names for which it was late. */
  apply(event: CloudEvent, fallbackTimeMs: number): string[] {
    const late: string[] = [];
    const parsed = eventTimeMs(event);
    const t = Number.isNaN(parsed) ? fallbackTimeMs : parsed;
    for (const def of this.defs) {
      if (def.types && !def.types.some((p) => typeMatches(p, event.type))) continue;
      const s = this.state.get(def.name)!;
      const watermark = s.maxEventTime - this.lateness(def);
      const key = def.key ? def.key(event) : partitionKeyOf(event);
      const cells = s.keys.get(key);
      // A key past retention is gone even before a sweep frees it.
      if (cells && this.expired(def.name, key, cells, watermark - this.retentionMs)) this.evict(s, key);
      const added = def.window.kind === 'session' ? this.addToSession(def, s, key, event, t, watermark) : this.addToWindows(def, s, key, event, t, watermark);
      if (added) {
        this.dirty.get(def.name)!.add(key);
        this.changed(s, key);
      } else {
        s.late++;
        late.push(def.name);
      }
      if (t > s.maxEventTime) s.maxEventTime = t;
    }
    return late;
  }

  /** The key's cells, created (and counted in its chunk) if it has none. */
  private cellsOf(s: AggregationState, key: string): WindowCell[] {
    let cells = s.keys.get(key);
    if (!cells) {
      s.keys.set(key, (cells = []));
      this.chunks?.keys[chunkOf(key)].add(key);
    }
    return cells;
  }

  /** A new open cell: the next close and eviction sweeps must not wait past its end. */
  private opened(s: AggregationState, end: number): void {
    if (end < s.nextEnd) s.nextEnd = end;
    if (end < s.evictFloor) s.evictFloor = end;
  }

  /** Tumbling and hopping: add the event to each of its windows not yet past the watermark. */
  private addToWindows(def: AnyAggregation, s: AggregationState, key: string, event: CloudEvent, t: number, watermark: number): boolean {
    let added = false;
    for (const start of windowStarts(def, t)) {
      const end = start + (def.window as { sizeMs: number }).sizeMs;
      if (end <= watermark) continue;
      const cells = this.cellsOf(s, key);
      let cell = cells.find((c) => c.start === start);
      if (!cell) {
        cell = { start, end, closed: false, acc: def.init() };
        cells.push(cell);
        cells.sort((a, b) => a.start - b.start);
        this.opened(s, end);
      }
      cell.acc = def.add(cell.acc, event);
      added = true;
    }
    return added;
  }

  /**
   * Sessions: the event's own span is [t, t + gap); every open session it
   * touches (closer than the gap to one of its events) merges with it into
   * one. Late if its span is past the watermark or it touches a closed one.
   */
  private addToSession(def: AnyAggregation, s: AggregationState, key: string, event: CloudEvent, t: number, watermark: number): boolean {
    const end = t + (def.window as { gapMs: number }).gapMs;
    if (end <= watermark) return false;
    const cells = s.keys.get(key) ?? [];
    const touching = cells.filter((c) => t < c.end && end > c.start);
    if (touching.some((c) => c.closed)) return false;
    let acc = touching.length > 0 ? touching[0].acc : def.init();
    for (const c of touching.slice(1)) acc = def.merge!(acc, c.acc);
    // A new cell, not the old one changed: a cell's start and end never change once made (their text is cached).
    const merged: WindowCell = {
      start: Math.min(t, ...touching.map((c) => c.start)),
      end: Math.max(end, ...touching.map((c) => c.end)),
      closed: false,
      acc: def.add(acc, event),
    };
    const next = cells.filter((c) => !touching.includes(c));
    next.push(merged);
    next.sort((a, b) => a.start - b.start);
    this.cellsOf(s, key);
    s.keys.set(key, next);
    this.opened(s, merged.end);
    return true;
  }

  /**
   * Past retention: every window closed, the last ended before `horizon`
   * (the watermark minus the retention), and no result of it still to be
   * written (takeDirty has taken its last change).
   */
  private expired(name: string, key: string, cells: readonly WindowCell[], horizon: number): boolean {
    const last = cells[cells.length - 1];
    return (!last || (last.closed && last.end < horizon)) && !this.dirty.get(name)!.has(key);
  }

  /** Forget a key: its windows, its checkpoint text; its chunk is rewritten without it. */
  private evict(s: AggregationState, key: string): void {
    s.keys.delete(key);
    s.json.delete(key);
    if (this.chunks) {
      const c = chunkOf(key);
      if (![...this.state.values()].some((o) => o.keys.has(key))) this.chunks.keys[c].delete(key);
      this.chunks.dirty.add(c);
    }
  }

  /** Keys held, over every aggregation (what retention bounds). */
  keyCount(): number {
    let n = 0;
    for (const s of this.state.values()) n += s.keys.size;
    return n;
  }

  /**
   * Windows the watermark has passed since the last call, now marked closed;
   * and keys past retention, dropped.
   */
  closeDue(): { name: string; key: string; cell: WindowCell }[] {
    const closed: { name: string; key: string; cell: WindowCell }[] = [];
    const retention = this.retentionMs;
    for (const def of this.defs) {
      const s = this.state.get(def.name)!;
      const watermark = s.maxEventTime - this.lateness(def);
      const horizon = watermark - retention;
      const closing = s.nextEnd <= watermark;
      const sweeping = horizon > s.evictFloor;
      if (!closing && !sweeping) continue;
      let nextEnd = Number.POSITIVE_INFINITY;
      let floor = Number.POSITIVE_INFINITY;
      for (const [key, all] of s.keys) {
        let cells = all;
        if (closing) {
          let changed = false;
          for (const cell of cells) {
            if (cell.closed) continue;
            if (cell.end <= watermark) {
              cell.closed = true;
              changed = true;
              closed.push({ name: def.name, key, cell });
            } else if (cell.end < nextEnd) nextEnd = cell.end;
          }
          if (changed) {
            const closedCells = cells.filter((c) => c.closed);
            const excess = closedCells.length - this.o.retainClosed;
            if (excess > 0) s.keys.set(key, (cells = cells.slice(excess)));
            this.dirty.get(def.name)!.add(key);
            this.changed(s, key);
          }
        }
        if (!sweeping) continue;
        if (this.expired(def.name, key, cells, horizon)) this.evict(s, key);
        else if (cells.length > 0 && cells[cells.length - 1].end < floor) floor = cells[cells.length - 1].end;
      }
      if (closing) s.nextEnd = nextEnd;
      // Keys closed just now are kept until their results are written; the next sweep, one step on, takes them.
      if (sweeping) s.evictFloor = Math.max(floor, horizon + retention / SweepSteps);
    }
    return closed;
  }

  /** A key's windows changed: its cached checkpoint text is stale, and so is its chunk. */
  private changed(s: AggregationState, key: string): void {
    s.json.delete(key);
    this.chunks?.dirty.add(chunkOf(key));
  }

  /** Have takeDirty return every key (after a restore, to repair results). */
  markAllDirty(): void {
    for (const [name, s] of this.state) for (const key of s.keys.keys()) this.dirty.get(name)!.add(key);
  }

  /** Results of every key changed since the last call. */
  takeDirty(): WindowResult[] {
    const out: WindowResult[] = [];
    for (const [name, keys] of this.dirty) {
      const s = this.state.get(name)!;
      for (const key of keys) out.push(this.result(name, key, s.keys.get(key) ?? []));
      keys.clear();
    }
    return out;
  }

  /**
   * The same results as takeDirty, as the JSON text stored in KV (the same
   * text as `JSON.stringify` of each result); closed windows are serialized
   * once, not on every change of their key.
   */
  takeDirtyJson(): { name: string; key: string; json: string }[] {
    const out: { name: string; key: string; json: string }[] = [];
    for (const [name, keys] of this.dirty) {
      const s = this.state.get(name)!;
      for (const key of keys) {
        const windows = (s.keys.get(key) ?? []).map((c) => {
          const t = this.textOf(c);
          if (t.json !== undefined) return t.json;
          const json = JSON.stringify(this.window(c));
          if (c.closed) t.json = json;
          return json;
        });
        out.push({ name, key, json: `{"name":${JSON.stringify(name)},"key":${JSON.stringify(key)},"windows":[${windows.join(',')}]}` });
      }
      keys.clear();
    }
    return out;
  }

  private textOf(c: WindowCell): CellText {
    let t = this.text.get(c);
    if (!t) this.text.set(c, (t = { start: this.iso(c.start), end: this.iso(c.end) }));
    return t;
  }

  /** A time as ISO text; the keys of one window share its start and end, so the text is made once per time, not per key. */
  private iso(ms: number): string {
    let text = this.isoText.get(ms);
    if (text === undefined) {
      if (this.isoText.size >= 4096) this.isoText.clear();
      this.isoText.set(ms, (text = new Date(ms).toISOString()));
    }
    return text;
  }

  private window(c: WindowCell): WindowResult['windows'][number] {
    const { start, end } = this.textOf(c);
    return { start, end, closed: c.closed, ...c.acc };
  }

  result(name: string, key: string, cells: readonly WindowCell[]): WindowResult {
    return {
      name,
      key,
      windows: cells.map((c) => this.window(c)),
    };
  }

  lateCount(name: string): number {
    return this.state.get(name)?.late ?? 0;
  }

  snapshot(): Snapshot {
    const aggregations: Snapshot['aggregations'] = {};
    for (const [name, s] of this.state) {
      const keys: Record<string, [number, number, boolean, Acc][]> = {};
      for (const [key, cells] of s.keys) keys[key] = cells.map((c) => [c.start, c.end, c.closed, c.acc]);
      // JSON has no -Infinity: null means no event yet.
      aggregations[name] = { maxEventTime: Number.isFinite(s.maxEventTime) ? s.maxEventTime : null, late: s.late, keys };
    }
    return { v: 1, lastSeq: this.lastSeq, aggregations };
  }

  /** A key's cells as checkpoint JSON (`"key":[[start,end,closed,acc],...]`), cached until the key changes. */
  private keyJson(s: AggregationState, key: string, cells: readonly WindowCell[]): string {
    let json = s.json.get(key);
    if (json === undefined) s.json.set(key, (json = `${JSON.stringify(key)}:${JSON.stringify(cells.map((c) => [c.start, c.end, c.closed, c.acc]))}`));
    return json;
  }

  private metaJson(s: AggregationState): string {
    const maxEventTime = Number.isFinite(s.maxEventTime) ? s.maxEventTime : null;
    return `"maxEventTime":${maxEventTime},"late":${s.late}`;
  }

  /**
   * The snapshot as JSON, the same text as `JSON.stringify(snapshot())`,
   * built from each key's cached cells so only keys changed since the last
   * call are serialized again.
   */
  snapshotJson(): string {
    const parts: string[] = [];
    for (const [name, s] of this.state) {
      const keys: string[] = [];
      for (const [key, cells] of s.keys) keys.push(this.keyJson(s, key, cells));
      parts.push(`${JSON.stringify(name)}:{${this.metaJson(s)},"keys":{${keys.join(',')}}}`);
    }
    return `{"v":1,"lastSeq":${this.lastSeq},"aggregations":{${parts.join(',')}}}`;
  }

  /** Everything but the keys' windows, as JSON (a `SnapshotMeta`). */
  snapshotMetaJson(): string {
    const parts = [...this.state].map(([name, s]) => `${JSON.stringify(name)}:{${this.metaJson(s)}}`);
    return `{"lastSeq":${this.lastSeq},"aggregations":{${parts.join(',')}}}`;
  }

  /**
   * Keep track of chunks from now on (the checkpoint is, or goes, in
   * chunks); `allDirty` has the next takeDirtyChunks name every chunk.
   */
  trackChunks(allDirty: boolean): void {
    if (!this.chunks) {
      this.chunks = { keys: Array.from({ length: CheckpointChunks }, () => new Set()), dirty: new Set() };
      for (const s of this.state.values()) for (const key of s.keys.keys()) this.chunks.keys[chunkOf(key)].add(key);
    }
    if (allDirty) for (let c = 0; c < CheckpointChunks; c++) this.chunks.dirty.add(c);
  }

  private trackedChunks(): NonNullable<PartitionWindows['chunks']> {
    if (!this.chunks) throw new Error('chunks are not tracked: call trackChunks first');
    return this.chunks;
  }

  /** The windows of the keys of chunk `c`, as JSON (a `SnapshotChunk`); `{}` when it has none. */
  chunkJson(c: number): string {
    const chunkKeys = this.trackedChunks().keys[c];
    const parts: string[] = [];
    for (const [name, s] of this.state) {
      const keys: string[] = [];
      for (const key of chunkKeys) {
        const cells = s.keys.get(key);
        if (cells) keys.push(this.keyJson(s, key, cells));
      }
      if (keys.length > 0) parts.push(`${JSON.stringify(name)}:{${keys.join(',')}}`);
    }
    return `{${parts.join(',')}}`;
  }

  /** Chunks with a key changed since the last call (or since trackChunks). */
  takeDirtyChunks(): number[] {
    const { dirty } = this.trackedChunks();
    const chunks = [...dirty].sort((a, b) => a - b);
    dirty.clear();
    return chunks;
  }

  restore(snapshot: Snapshot): void {
    const chunk: SnapshotChunk = {};
    for (const [name, saved] of Object.entries(snapshot.aggregations)) chunk[name] = saved.keys;
    this.restoreMeta(snapshot);
    this.restoreChunk(chunk);
  }

  restoreMeta(meta: SnapshotMeta): void {
    this.lastSeq = meta.lastSeq;
    for (const [name, saved] of Object.entries(meta.aggregations)) {
      const s = this.state.get(name);
      if (!s) continue; // an aggregation that was removed from the code
      s.maxEventTime = saved.maxEventTime ?? Number.NEGATIVE_INFINITY;
      s.late = saved.late;
    }
  }

  restoreChunk(chunk: SnapshotChunk): void {
    for (const [name, keys] of Object.entries(chunk)) {
      const s = this.state.get(name);
      if (!s) continue;
      for (const [key, cells] of Object.entries(keys)) {
        s.keys.set(
          key,
          cells.map(([start, end, closed, acc]) => ({ start, end, closed, acc })),
        );
        s.json.delete(key);
        this.chunks?.keys[chunkOf(key)].add(key);
        for (const [, end, closed] of cells) if (!closed && end < s.nextEnd) s.nextEnd = end;
        const last = cells[cells.length - 1];
        if (last && last[1] < s.evictFloor) s.evictFloor = last[1];
      }
    }
  }
}
