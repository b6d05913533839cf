/**
 * PostgreSQL stops for 10 s mid-stream: the sink says it is not ready,
 * JetStream keeps the updates it cannot write, and once PostgreSQL is back
 * the table is exact, nothing lost. The machine's PostgreSQL is shared, so
 * the test runs a private one (initdb in a temporary directory, a free
 * port) and stops that.
 */
import { Pool } from 'pg';
import {
  createTestDatabase,
  eventually,
  startMesh,
  startNatsServer,
  startPrivatePostgres,
  startService,
  stopAll,
  totalsFor,
  type NatsServer,
  type PrivatePostgres,
  type ServiceName,
  type ServiceProcess,
  type TestDatabase,
} from '@mesh/testing';
import { pacedEvents } from './support/paced-events';
import { expectedTotals, tableTotals } from './support/sink-table';

const OUTAGE_MS = 10_000;

describe('sink: PostgreSQL away for 10 s mid-stream', () => {
  let postgres: PrivatePostgres;
  let db: TestDatabase;
  let server: NatsServer;
  let mesh: Record<ServiceName, ServiceProcess> | undefined;
  let sink: ServiceProcess | undefined;
  let pool: Pool | undefined;

  const readiness = async () => {
    const res = await fetch(`${sink!.url}/readyz`);
    return { status: res.status, checks: ((await res.json()) as { checks: Record<string, boolean> }).checks };
  };

  beforeAll(async () => {
    postgres = await startPrivatePostgres();
    db = await createTestDatabase(postgres.url);
    server = await startNatsServer();
    mesh = await startMesh(server.url, { MESH_LEASE_TTL: '2s', MESH_ACK_WAIT: '5s' });
    sink = await startService('sink', { NATS_URL: server.url, MESH_SINK_POSTGRES_URL: db.url, MESH_SINK_RETRY_MAX: '1s', MESH_ACK_WAIT: '5s' });
  }, 120_000);

  afterAll(async () => {
    await stopAll([...Object.values(mesh ?? {}), sink]);
    await server?.stop();
    await pool?.end();
    // Stops the private server (by the pid in its data directory) and removes its data.
    await postgres?.destroy();
  }, 60_000);

  it('waits, retries and loses nothing; readiness says PostgreSQL is away meanwhile', async () => {
    const keyOf = (n: number) => `outage-${n % 50}`;
    const amountOf = (n: number) => (n % 11) + 1;
    const TOTAL = 5000;
    const produce = pacedEvents(mesh!.ingest.url, { total: TOTAL, keyOf, amountOf, format: 'batch', pauseMs: 30 });
    expect(await eventually(async () => produce.sent() >= TOTAL * 0.3, 120_000, 20)).toBe(true);
    expect((await readiness()).checks.postgres).toBe(true);

    await postgres.stop();
    const stoppedAt = Date.now();
    expect(
      await eventually(
        async () => {
          const r = await readiness();
          return r.status === 503 && r.checks.postgres === false;
        },
        OUTAGE_MS,
        250,
        // When the sink does not answer at all, its last log lines say why.
        () => ({ sinkExit: sink!.exitSignal(), sinkLog: sink!.output().split('\n').slice(-15) }),
      ),
    ).toBe(true);

    // Everything is sent and aggregated while PostgreSQL is still away: the
    // last results exist only in JetStream and in what the sink holds.
    await produce.done;
    const expected = expectedTotals(TOTAL, keyOf, amountOf);
    expect(
      await eventually(async () => JSON.stringify(await totalsFor(mesh!.aggregator.url, Object.keys(expected))) === JSON.stringify(expected), 60_000),
    ).toBe(true);
    expect(Date.now() - stoppedAt).toBeLessThan(OUTAGE_MS);
    expect((await readiness()).checks.postgres).toBe(false);
    await new Promise((r) => setTimeout(r, OUTAGE_MS - (Date.now() - stoppedAt)));

    await postgres.start();
    pool = new Pool({ connectionString: db.url, max: 2 });
    await eventually(async () => JSON.stringify(await tableTotals(pool!, 'outage-')) === JSON.stringify(expected), 60_000);
    expect(await tableTotals(pool, 'outage-')).toEqual(expected);
    expect(await eventually(async () => (await readiness()).status === 200, 15_000)).toBe(true);
  }, 240_000);
});
