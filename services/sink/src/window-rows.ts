/**
 * What one result in `mesh_aggregates` (KV) becomes in the table: a row per
 * window. The aggregator writes a key's whole result (all its windows) at
 * every change, so each KV message holds the newest state of every window
 * it lists, and its stream sequence says how new that is.
 */

/** One row of the table `mesh_aggregates`. */
export interface WindowRow {
  name: string;
  key: string;
  /** ISO 8601, as the aggregator writes it. */
  windowStart: string;
  windowEnd: string;
  closed: boolean;
  /** The aggregation's fields (`{"count":..,"sum":..}` for totals), as JSON text. */
  value: string;
  /** Stream sequence of the KV message it came from: a higher one is newer. */
  sourceSeq: number;
}

interface StoredResult {
  name: string;
  key: string;
  windows: { start: string; end: string; closed: boolean; [field: string]: unknown }[];
}

/** A KV value that is not a result as the aggregator writes it. */
export class MalformedResultError extends Error {
  constructor(subject: string, seq: number, problem: string) {
    super(`result at ${subject} (stream sequence ${seq}) ${problem}; expected {"name","key","windows":[{"start","end","closed",...fields}]}`);
    this.name = 'MalformedResultError';
  }
}

export function windowRows(subject: string, seq: number, text: string): WindowRow[] {
  let doc: StoredResult;
  try {
    doc = JSON.parse(text) as StoredResult;
  } catch {
    throw new MalformedResultError(subject, seq, 'is not JSON');
  }
  if (typeof doc?.name !== 'string' || typeof doc.key !== 'string' || !Array.isArray(doc.windows)) {
    throw new MalformedResultError(subject, seq, 'has no name, key or windows');
  }
  return doc.windows.map(({ start, end, closed, ...fields }) => {
    if (typeof start !== 'string' || typeof end !== 'string' || Number.isNaN(Date.parse(start)) || Number.isNaN(Date.parse(end))) {
      throw new MalformedResultError(subject, seq, `has a window whose start or end is not a time (${JSON.stringify(start)}, ${JSON.stringify(end)})`);
    }
    return { name: doc.name, key: doc.key, windowStart: start, windowEnd: end, closed: closed === true, value: JSON.stringify(fields), sourceSeq: seq };
  });
}

/**
 * One row per window, the newest of each (PostgreSQL refuses to update one
 * row twice in a statement), in primary-key order so that two sinks writing
 * overlapping batches lock rows in the same order and never deadlock.
 */
export function newestPerWindow(rows: Iterable<WindowRow>): WindowRow[] {
  const byWindow = new Map<string, WindowRow>();
  for (const row of rows) {
    const id = JSON.stringify([row.name, row.key, Date.parse(row.windowStart)]);
    const held = byWindow.get(id);
    if (!held || held.sourceSeq < row.sourceSeq) byWindow.set(id, row);
  }
  return [...byWindow.values()].sort((a, b) => cmp(a.name, b.name) || cmp(a.key, b.key) || Date.parse(a.windowStart) - Date.parse(b.windowStart));
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
