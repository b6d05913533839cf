/**
 * The sink with real processes: nats-server, the four services and the
 * sink, writing to a database of the machine's PostgreSQL created and
 * dropped by the test. The table's totals equal the aggregator's, window
 * by window; a SIGKILL of the sink mid-stream, and one while it holds
 * updates PostgreSQL has not committed, leaves the table exact.
 */
import { Pool } from 'pg';
import {
  createTestDatabase,
  eventually,
  orderEvent,
  postEvents,
  startMesh,
  startNatsServer,
  startService,
  stopAll,
  totalsFor,
  type NatsServer,
  type ServiceName,
  type ServiceProcess,
  type TestDatabase,
} from '@mesh/testing';
import { pacedEvents } from './support/paced-events';
import { expectedTotals, sinkConsumerState, tableTotals } from './support/sink-table';

describe('sink: results in PostgreSQL', () => {
  let server: NatsServer;
  let db: TestDatabase;
  let pool: Pool;
  let mesh: Record<ServiceName, ServiceProcess> | undefined;
  let sink: ServiceProcess | undefined;
  const startSink = async () =>
    (sink = await startService('sink', { NATS_URL: server.url, MESH_SINK_POSTGRES_URL: db.url, MESH_ACK_WAIT: '5s', MESH_LEASE_TTL: '2s' }));

  beforeAll(async () => {
    server = await startNatsServer();
    db = await createTestDatabase();
    pool = new Pool({ connectionString: db.url, max: 2 });
    mesh = await startMesh(server.url, { MESH_LEASE_TTL: '2s', MESH_ACK_WAIT: '5s' });
    await startSink();
  }, 90_000);

  afterAll(async () => {
    await stopAll([...Object.values(mesh ?? {}), sink]);
    await server?.stop();
    await pool?.end();
    await db?.drop();
  }, 60_000);

  it('writes the totals GET /v1/aggregates serves, window by window', async () => {
    const keyOf = (n: number) => `same-${n % 25}`;
    const amountOf = (n: number) => (n % 7) + 1;
    const events = Array.from({ length: 1500 }, (_, n) => orderEvent(keyOf(n), n, amountOf(n)));
    for (let i = 0; i < events.length; i += 250) await postEvents(mesh!.ingest.url, events.slice(i, i + 250), 'batch');
    const expected = expectedTotals(events.length, keyOf, amountOf);

    expect(
      await eventually(async () => JSON.stringify(await totalsFor(mesh!.aggregator.url, Object.keys(expected))) === JSON.stringify(expected), 60_000),
    ).toBe(true);
    await eventually(async () => JSON.stringify(await tableTotals(pool, 'same-')) === JSON.stringify(expected), 30_000);
    expect(await tableTotals(pool, 'same-')).toEqual(expected);

    // Not only the sums: every window of a key, as the API has it.
    const api = (await (await fetch(`${mesh!.aggregator.url}/v1/aggregates/totals/same-3`)).json()) as {
      windows: { start: string; closed: boolean; count: number; sum: number }[];
    };
    await eventually(async () => {
      const { rows } = await pool.query("SELECT closed FROM mesh_aggregates WHERE name = 'totals' AND key = 'same-3' ORDER BY window_start");
      return rows.length === api.windows.length && rows.every((r, i) => r.closed === api.windows[i].closed);
    }, 10_000);
    const { rows } = await pool.query("SELECT window_start, closed, value FROM mesh_aggregates WHERE name = 'totals' AND key = 'same-3' ORDER BY window_start");
    const latest = (await (await fetch(`${mesh!.aggregator.url}/v1/aggregates/totals/same-3`)).json()) as typeof api;
    expect(rows.map((r) => ({ start: (r.window_start as Date).toISOString(), closed: r.closed, ...r.value }))).toEqual(
      latest.windows.map(({ start, closed, count, sum }) => ({ start, closed, count, sum })),
    );
  }, 120_000);

  it('is exact after a SIGKILL mid-stream, and after one while PostgreSQL had not committed what it held', async () => {
    const keyOf = (n: number) => `kill-${n % 40}`;
    const amountOf = (n: number) => (n % 13) + 1;
    const TOTAL = 6000;
    const produce = pacedEvents(mesh!.ingest.url, { total: TOTAL, keyOf, amountOf, format: 'ndjson', pauseMs: 20 });
    expect(await eventually(async () => produce.sent() >= TOTAL * 0.4, 120_000, 20)).toBe(true);
    await sink!.kill();
    await startSink();
    await produce.done;
    let expected = expectedTotals(TOTAL, keyOf, amountOf);
    expect(await eventually(async () => JSON.stringify(await tableTotals(pool, 'kill-')) === JSON.stringify(expected), 60_000)).toBe(true);

    // Now a kill while the sink holds updates it could not write: a lock
    // keeps its upsert waiting. Whatever it holds must not have been acked.
    const locker = await pool.connect();
    try {
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE mesh_aggregates IN EXCLUSIVE MODE'); // writes wait, reads go on
      const more = Array.from({ length: 400 }, (_, i) => orderEvent(keyOf(TOTAL + i), TOTAL + i, amountOf(TOTAL + i)));
      await postEvents(mesh!.ingest.url, more, 'batch');
      expected = expectedTotals(TOTAL + more.length, keyOf, amountOf);
      expect(
        await eventually(async () => JSON.stringify(await totalsFor(mesh!.aggregator.url, Object.keys(expected))) === JSON.stringify(expected), 60_000),
      ).toBe(true);
      // Every update is in the sink's hands (delivered to it) and its write is waiting for the lock.
      expect(
        await eventually(async () => {
          const { pending } = await sinkConsumerState(server.url);
          const waiting = await pool.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'");
          return pending === 0 && waiting.rows[0].n > 0;
        }, 30_000),
      ).toBe(true);
      expect(await tableTotals(pool, 'kill-')).not.toEqual(expected);
      await sink!.kill();
      // A backend waiting on a lock notices its client is gone only when it
      // answers, after committing: end it, as a crash of the sink's host would.
      await pool.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'mesh-sink:%'");
    } finally {
      await locker.query('ROLLBACK');
      locker.release();
    }
    await startSink();
    await eventually(async () => JSON.stringify(await tableTotals(pool, 'kill-')) === JSON.stringify(expected), 60_000);
    expect(await tableTotals(pool, 'kill-')).toEqual(expected);
  }, 240_000);
});
