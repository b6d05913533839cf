/**
 * The table `mesh_aggregates` in PostgreSQL: one row per aggregation, key
 * and window, with the stream sequence of the update it holds.
 *
 * Effectively once: an upsert takes a row's update only when its
 * `source_seq` is higher than the row's. A batch written again after a crash
 * (written, not acked), an update delivered twice, or two sinks racing on
 * the same window all leave the newest update in the row, and nothing is
 * ever added up: a row holds the value of a window, not an increment.
 */
import type { Pool, PoolClient } from 'pg';
import type { WindowRow } from './window-rows';

export const ResultsTable = 'mesh_aggregates';

/** Created if missing; `source_seq` is the stream sequence of the update the row holds. */
export const CreateResultsTable = `
CREATE TABLE IF NOT EXISTS ${ResultsTable} (
  name text NOT NULL,
  key text NOT NULL,
  window_start timestamptz NOT NULL,
  window_end timestamptz NOT NULL,
  closed boolean NOT NULL,
  value jsonb NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  source_seq bigint NOT NULL,
  PRIMARY KEY (name, key, window_start)
)`;

/**
 * One statement for the whole batch: the rows travel as seven arrays (no
 * limit of 65535 parameters however many rows), and the WHERE of the update
 * is the newer-wins rule.
 */
export const UpsertWindows = `
INSERT INTO ${ResultsTable} AS t (name, key, window_start, window_end, closed, value, updated_at, source_seq)
SELECT u.name, u.key, u.window_start, u.window_end, u.closed, u.value, now(), u.source_seq
FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::boolean[], $6::jsonb[], $7::bigint[])
  AS u(name, key, window_start, window_end, closed, value, source_seq)
ON CONFLICT (name, key, window_start) DO UPDATE
SET window_end = EXCLUDED.window_end, closed = EXCLUDED.closed, value = EXCLUDED.value, updated_at = EXCLUDED.updated_at, source_seq = EXCLUDED.source_seq
WHERE t.source_seq < EXCLUDED.source_seq`;

export async function ensureResultsTable(pool: Pool): Promise<void> {
  await pool.query(CreateResultsTable);
}

/**
 * Upsert `rows` (at most one per window: see newestPerWindow) in one
 * transaction; resolves once PostgreSQL has committed them. Returns how many
 * rows took the update (older or equal updates are left out).
 */
export async function upsertWindows(pool: Pool, rows: readonly WindowRow[]): Promise<number> {
  if (rows.length === 0) return 0;
  const client: PoolClient = await pool.connect();
  let broken = false;
  // A checked-out client has no listener of the pool's: PostgreSQL ending the
  // connection between two messages (a shutdown's FATAL right after the
  // query's last reply) would be an unhandled 'error' that ends the process.
  const onError = () => (broken = true);
  client.on('error', onError);
  try {
    const result = await client.query(UpsertWindows, [
      rows.map((r) => r.name),
      rows.map((r) => r.key),
      rows.map((r) => r.windowStart),
      rows.map((r) => r.windowEnd),
      rows.map((r) => r.closed),
      rows.map((r) => r.value),
      rows.map((r) => String(r.sourceSeq)),
    ]);
    return result.rowCount ?? 0;
  } catch (err) {
    // A connection that failed mid-statement is not given back to the pool.
    broken = true;
    throw err;
  } finally {
    client.removeListener('error', onError);
    client.release(broken);
  }
}
