/**
 * `mesh replay` with real processes: the services keep running while the
 * stages pause, their derived state is reset and everything downstream of
 * ingest is rebuilt from MESH_INGEST.
 *
 * - Replayed from the beginning, every key's totals equal those of the first
 *   run: not doubled (the aggregator's checkpoints and results were reset)
 *   and not missing (the replay's outputs got new message ids, which the
 *   streams' duplicate windows let through).
 * - Ingest answers 202 to every request sent while the replay runs, and
 *   those events are counted too.
 * - Events posted after the replay add to the rebuilt totals.
 * - The aggregator SIGKILLed while paused and again while rebuilding: the
 *   totals still end exact.
 * - Replayed from a time, the totals are those of the events stored since.
 */
import { Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/nats-core';
import { Buckets, parseReplaySignal, ReplayEpochKey, StageInput, consumerName, type CloudEvent } from '@mesh/contracts';
import {
  encodeRequest,
  eventually,
  orderEvent,
  postEvents,
  runMeshCli,
  startNatsServer,
  startService,
  totalsFor,
  type NatsServer,
  type ServiceName,
  type ServiceProcess,
  type Totals,
} from '@mesh/testing';
import { jetstreamManager } from '@nats-io/jetstream';
import { waitUntilDrained } from './support/mesh-state';

const KEYS = 40;
const PARTITIONS = 16;

describe('mesh replay', () => {
  let server: NatsServer;
  let nc: NatsConnection;
  const live = new Map<ServiceName, ServiceProcess>();
  const env = () => ({ NATS_URL: server.url, MESH_LEASE_TTL: '2s', MESH_ACK_WAIT: '5s' });
  const expected = new Map<string, Totals>();
  let next = 0;

  const start = async (name: ServiceName) => {
    const p = await startService(name, env(), { waitReady: false });
    live.set(name, p);
    return p;
  };
  const keyOf = (n: number) => `acct-${n % KEYS}`;
  const amountOf = (n: number) => (n % 50) + 1;
  /** The next `count` events, counted in `expected` once they are accepted. */
  const nextEvents = (count: number): CloudEvent[] => {
    const events = Array.from({ length: count }, (_, i) => orderEvent(keyOf(next + i), next + i, amountOf(next + i)));
    next += count;
    return events;
  };
  const expect202 = (events: CloudEvent[]) => {
    for (const e of events) {
      const key = e.partitionkey as string;
      const t = expected.get(key) ?? { count: 0, sum: 0 };
      expected.set(key, { count: t.count + 1, sum: t.sum + (e.data as { amount: number }).amount });
    }
  };
  const post = async (count: number) => {
    for (let i = 0; i < count; i += 200) {
      const events = nextEvents(Math.min(200, count - i));
      await postEvents(live.get('ingest')!.url, events, 'batch', 120_000);
      expect202(events);
    }
  };
  const totals = () => totalsFor(live.get('aggregator')!.url, expected.keys());
  /** Wait for the totals to reach the expected counts, then for the mesh to drain, then compare exactly. */
  const settledTotals = async () => {
    await eventually(
      async () => {
        const now = await totals();
        return [...expected].every(([k, t]) => now[k].count >= t.count);
      },
      180_000,
      500,
    );
    expect(await waitUntilDrained(server.url, PARTITIONS, 120_000)).toBe(true);
    return totals();
  };
  const signal = async () => {
    const e = await (await new Kvm(nc).open(Buckets.checkpoints)).get(ReplayEpochKey);
    return e?.operation === 'PUT' ? parseReplaySignal(e.string()) : undefined;
  };
  const replay = (...args: string[]) => runMeshCli(['replay', ...args], { NATS_URL: server.url });

  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connect({ servers: server.url });
    await (await start('processor')).waitReady();
    await Promise.all((['ingest', 'router', 'aggregator'] as const).map(async (n) => (await start(n)).waitReady()));
  }, 60_000);

  afterAll(async () => {
    await Promise.all([...live.values()].map((p) => p.stop()));
    await nc?.close();
    await server?.stop();
  }, 60_000);

  it('rebuilds every total from the beginning without doubling it, while ingest keeps answering 202', async () => {
    await post(3_000);
    const first = await settledTotals();
    expect(first).toEqual(Object.fromEntries(expected));

    const dry = await replay('--from', 'beginning', '--dry-run');
    expect(dry).toContain('purge mesh_aggregates');
    expect(await signal()).toBeUndefined(); // a dry run changes nothing

    // Requests during the replay must each be answered 202 at the first try.
    let replaying = true;
    const statuses: number[] = [];
    const during = (async () => {
      while (replaying) {
        const events = nextEvents(20);
        const { contentType, body } = encodeRequest(events, 'batch');
        const res = await fetch(`${live.get('ingest')!.url}/v1/events`, { method: 'POST', headers: { 'content-type': contentType }, body });
        await res.text();
        statuses.push(res.status);
        if (res.status === 202) expect202(events);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const out = await replay('--from', 'beginning', '--yes').finally(() => (replaying = false));
    await during;
    expect(out).toContain('resumed: epoch 1');
    expect(statuses.length).toBeGreaterThan(0);
    expect(statuses.filter((s) => s !== 202)).toEqual([]);
    expect(await signal()).toEqual({ epoch: 1, from: 'beginning', phase: 'run' });

    expect(await settledTotals()).toEqual(Object.fromEntries(expected));

    await post(1_000);
    expect(await settledTotals()).toEqual(Object.fromEntries(expected));
  }, 600_000);

  it('ends exact when the aggregator is SIGKILLed while paused and again while rebuilding', async () => {
    await post(2_000);
    await settledTotals();
    const jsm = await jetstreamManager(nc);

    const run = replay('--from', 'beginning', '--yes');
    run.catch(() => undefined);
    await eventually(async () => (await signal())?.epoch === 2, 60_000, 20);
    const first = live.get('aggregator')!;
    await first.kill();
    await start('aggregator');
    expect(await run).toContain('resumed: epoch 2');

    // Kill it again while the rebuild is under way: some aggregator partition still has work.
    await eventually(
      async () => {
        const infos = await Promise.all(Array.from({ length: PARTITIONS }, (_, p) => jsm.consumers.info(StageInput.aggregator, consumerName('aggregator', p))));
        return infos.some((i) => i.num_pending + i.num_ack_pending > 0);
      },
      60_000,
      20,
    );
    await live.get('aggregator')!.kill();
    await (await start('aggregator')).waitReady();

    expect(await settledTotals()).toEqual(Object.fromEntries(expected));
  }, 600_000);

  it('replayed from a time, counts exactly the events stored at or after it', async () => {
    await post(1_000);
    await settledTotals();
    // Stored before `from` (same clock as the server's): left out of the rebuilt totals.
    await new Promise((r) => setTimeout(r, 50));
    const from = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 50));
    expected.clear();
    await post(1_200);
    expect(await replay('--from', from, '--yes')).toContain('resumed: epoch 3');
    expect(await settledTotals()).toEqual(Object.fromEntries(expected));
  }, 600_000);
});
