/**
 * The upsert against a real PostgreSQL (TEST_POSTGRES_URL, default the
 * machine's 127.0.0.1:5432), in a database created and dropped by the test:
 * a row takes an update only when its stream sequence is higher.
 */
import { Pool } from 'pg';
import { createTestDatabase, type TestDatabase } from '@mesh/testing';
import { ensureResultsTable, upsertWindows } from './results-table';
import type { WindowRow } from './window-rows';

const start = '2026-01-01T00:00:00.000Z';
const end = '2026-01-01T00:01:00.000Z';
const update = (seq: number, count: number, closed = false, key = 'k1'): WindowRow => ({
  name: 'totals',
  key,
  windowStart: start,
  windowEnd: end,
  closed,
  value: JSON.stringify({ count, sum: count * 10 }),
  sourceSeq: seq,
});

describe('mesh_aggregates upsert', () => {
  let db: TestDatabase;
  let pool: Pool;

  const rowOf = async (key = 'k1') =>
    (
      await pool.query('SELECT value, closed, source_seq, updated_at FROM mesh_aggregates WHERE name = $1 AND key = $2 AND window_start = $3', [
        'totals',
        key,
        start,
      ])
    ).rows[0];

  beforeAll(async () => {
    db = await createTestDatabase();
    pool = new Pool({ connectionString: db.url, max: 2 });
    await ensureResultsTable(pool);
    // Creating it again is harmless (every sink start does).
    await ensureResultsTable(pool);
  });
  afterAll(async () => {
    await pool?.end();
    await db?.drop();
  });

  it('creates the table with the required columns and primary key', async () => {
    const cols = await pool.query(
      "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'mesh_aggregates' ORDER BY ordinal_position",
    );
    expect(cols.rows.map((r) => [r.column_name, r.data_type])).toEqual([
      ['name', 'text'],
      ['key', 'text'],
      ['window_start', 'timestamp with time zone'],
      ['window_end', 'timestamp with time zone'],
      ['closed', 'boolean'],
      ['value', 'jsonb'],
      ['updated_at', 'timestamp with time zone'],
      ['source_seq', 'bigint'],
    ]);
    const pk = await pool.query(`SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
      WHERE i.indrelid = 'mesh_aggregates'::regclass AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)`);
    expect(pk.rows.map((r) => r.attname)).toEqual(['name', 'key', 'window_start']);
  });

  it('takes a newer update, ignores an older one, and changes nothing when the same one comes again', async () => {
    expect(await upsertWindows(pool, [update(10, 1)])).toBe(1);
    expect(await upsertWindows(pool, [update(20, 2, true)])).toBe(1);
    expect(await rowOf()).toMatchObject({ value: { count: 2, sum: 20 }, closed: true, source_seq: '20' });
    const written = (await rowOf()).updated_at as Date;

    // An older update (a redelivery of what was written before) is left out.
    expect(await upsertWindows(pool, [update(15, 99)])).toBe(0);
    // The same update again (written, then the sink died before its ack) changes nothing, not even updated_at.
    expect(await upsertWindows(pool, [update(20, 2, true)])).toBe(0);
    const row = await rowOf();
    expect(row).toMatchObject({ value: { count: 2, sum: 20 }, closed: true, source_seq: '20' });
    expect((row.updated_at as Date).getTime()).toBe(written.getTime());
  });

  it('writes a batch of many keys in one statement, each row newer-wins on its own', async () => {
    const keys = Array.from({ length: 3000 }, (_, i) => `bulk-${i}`);
    expect(
      await upsertWindows(
        pool,
        keys.map((k, i) => update(100 + i, i, false, k)),
      ),
    ).toBe(3000);
    // Half of them newer, half older: only the newer half is taken.
    const mixed = keys.map((k, i) => update(i % 2 === 0 ? 10_000 + i : 50, -1, false, k));
    expect(await upsertWindows(pool, mixed)).toBe(1500);
    expect((await rowOf('bulk-2')).value).toEqual({ count: -1, sum: -10 });
    expect((await rowOf('bulk-3')).value).toEqual({ count: 3, sum: 30 });
  });
});
