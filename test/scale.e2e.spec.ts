/**
 * Horizontal scale with real processes: one instance of a stage takes a
 * stream of events carrying per-key sequence numbers; two more join
 * mid-stream, one is SIGKILLed and another SIGTERMed. Then:
 *   (a) every key's totals are exact,
 *   (b) every key's events reached MESH_PROCESSED in the order they were sent,
 *   (c) no partition was consumed by two live instances at once,
 *   (d) once settled, 16 partitions over 3 instances differ by at most one,
 *       and the third join moved about 1/3 of them,
 *   (e) no instance warned of a timer overflow (a handover that gave up at once).
 */
import { Streams } from '@mesh/contracts';
import { assignPartitions } from '@mesh/messaging';
import {
  eventually,
  orderEvent,
  postEvents,
  readStreamEvents,
  seqsByKey,
  startNatsServer,
  startService,
  type NatsServer,
  type ServiceProcess,
} from '@mesh/testing';
import { waitUntilDrained } from './support/mesh-state';

const PARTITIONS = 16;
const KEYS = 48;
const PER_KEY = 120;
const WORKERS = 6;

interface PartitionsView {
  instance: string;
  assigned: number[];
  consuming: number[];
}

async function partitionsOf(p: ServiceProcess): Promise<PartitionsView> {
  return (await (await fetch(`${p.url}/v1/partitions`)).json()) as PartitionsView;
}

/** Settled: every instance consumes exactly what the rendezvous assignment of these instances gives it. */
async function settled(procs: ServiceProcess[]): Promise<PartitionsView[] | undefined> {
  const views = await Promise.all(procs.map(partitionsOf));
  const target = assignPartitions(
    views.map((v) => v.instance),
    PARTITIONS,
  );
  const exact = views.every((v) => JSON.stringify(v.consuming) === JSON.stringify(target.get(v.instance)) && v.assigned.length === v.consuming.length);
  return exact ? views : undefined;
}

async function waitSettled(procs: ServiceProcess[]): Promise<PartitionsView[]> {
  let views: PartitionsView[] | undefined;
  await eventually(
    async () => (views = await settled(procs)) !== undefined,
    30_000,
    200,
    async () => `partitions did not settle over ${procs.length} instances: ${JSON.stringify(await Promise.all(procs.map(partitionsOf)))}`,
  );
  return views!;
}

interface Interval {
  instance: string;
  partition: number;
  from: number;
  to: number;
}

/** Consuming intervals per partition from an instance's log; `diedAt` closes what a SIGKILL left open. */
function intervalsOf(log: string, diedAt = Number.POSITIVE_INFINITY): Interval[] {
  const open = new Map<number, Interval>();
  const out: Interval[] = [];
  for (const line of log.split('\n')) {
    if (!line.startsWith('{')) continue;
    const rec = JSON.parse(line) as { time: string; msg: string; partition?: number; instance: string };
    if (rec.partition === undefined) continue;
    const t = Date.parse(rec.time);
    if (rec.msg === 'partition consuming') open.set(rec.partition, { instance: rec.instance, partition: rec.partition, from: t, to: Number.POSITIVE_INFINITY });
    if (rec.msg === 'partition stopped' && open.has(rec.partition)) {
      out.push({ ...open.get(rec.partition)!, to: t });
      open.delete(rec.partition);
    }
  }
  for (const i of open.values()) out.push({ ...i, to: diedAt });
  return out;
}

describe.each(['processor', 'aggregator'] as const)('scaling out the %s', (stage) => {
  let server: NatsServer;
  const procs: ServiceProcess[] = [];
  const env = () => ({ NATS_URL: server.url, MESH_LEASE_TTL: '2s', MESH_ACK_WAIT: '4s', MESH_SHUTDOWN_TIMEOUT: '10s' });
  const start = async (name: 'ingest' | 'router' | 'processor' | 'aggregator') => {
    const p = await startService(name, env());
    procs.push(p);
    return p;
  };

  beforeAll(async () => {
    server = await startNatsServer();
  });
  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    await server?.stop();
  }, 60_000);

  it('spreads partitions, keeps per-key order, never double-owns a partition and counts exactly while instances join, die and leave', async () => {
    const a = await start(stage);
    if (stage === 'aggregator') await start('processor');
    const ingest = await start('ingest');
    await start('router');
    if (stage === 'processor') await start('aggregator');
    await waitSettled([a]);

    // Producers: each worker owns some keys and sends their events in order.
    const keys = Array.from({ length: KEYS }, (_, i) => `key-${i}`);
    let sent = 0;
    const produce = Promise.all(
      Array.from({ length: WORKERS }, async (_, w) => {
        const mine = keys.filter((_, i) => i % WORKERS === w);
        for (let n = 0; n < PER_KEY; n += 4) {
          const events = mine.flatMap((k) => [0, 1, 2, 3].map((d) => orderEvent(k, n + d, ((n + d) % 13) + 1)));
          await postEvents(ingest.url, events, w % 2 === 0 ? 'batch' : 'ndjson');
          sent += events.length;
          await new Promise((r) => setTimeout(r, 40));
        }
      }),
    );

    await eventually(async () => sent >= (KEYS * PER_KEY) / 8, 30_000, 20);
    const b = await start(stage);
    const two = await waitSettled([a, b]);
    const c = await start(stage);
    const three = await waitSettled([a, b, c]);

    // (d) balance, and each settled assignment is the rendezvous assignment of
    // the live members (whose movement on a join, about 1/k, is measured in
    // assignment.spec.ts); the third join moved partitions only to the newcomer
    // or between quota holders, never all of them.
    const counts = three.map((v) => v.consuming.length);
    expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
    const ownerBefore = new Map(two.flatMap((v) => v.consuming.map((p) => [p, v.instance] as const)));
    const moved = three.flatMap((v) => v.consuming.filter((p) => ownerBefore.get(p) !== v.instance));
    expect(moved.length).toBeGreaterThanOrEqual(Math.floor(PARTITIONS / 3));
    expect(moved.length).toBeLessThan(PARTITIONS / 2 + 3);

    // Death and departure while events flow.
    await b.kill();
    const bDiedAt = Date.now();
    await waitSettled([a, c]);
    expect(await c.stop()).toBe(0);
    await waitSettled([a]);
    await produce;

    // (a) exact totals.
    const expected = new Map(keys.map((k) => [k, { count: PER_KEY, sum: Array.from({ length: PER_KEY }, (_, n) => (n % 13) + 1).reduce((s, x) => s + x, 0) }]));
    const aggregator = procs.find((p) => p.name === 'aggregator' && p.pid !== b.pid && p.pid !== c.pid)!;
    const totals = async () =>
      new Map(
        await Promise.all(
          keys.map(async (k) => {
            const body = (await (await fetch(`${aggregator.url}/v1/aggregates/totals/${k}`)).json()) as { windows: { count: number; sum: number }[] };
            return [k, body.windows.reduce((t, w) => ({ count: t.count + w.count, sum: t.sum + w.sum }), { count: 0, sum: 0 })] as const;
          }),
        ),
      );
    // Once every partition consumer is drained nothing more will be counted
    // (or published to MESH_PROCESSED): the totals are final, so a late
    // double count cannot hide behind an early comparison.
    await waitUntilDrained(server.url, PARTITIONS, 60_000);
    expect(Object.fromEntries(await totals())).toEqual(Object.fromEntries(expected));

    // (b) per-key order in MESH_PROCESSED, each event once.
    const seqs = seqsByKey(await readStreamEvents(server.url, Streams.processed));
    const inOrder = Array.from({ length: PER_KEY }, (_, n) => n);
    for (const k of keys) expect({ key: k, seqs: seqs.get(k) }).toEqual({ key: k, seqs: inOrder });

    // (c) no partition had two live owners at once.
    const intervals = [...intervalsOf(a.output()), ...intervalsOf(b.output(), bDiedAt), ...intervalsOf(c.output())];
    const overlaps: string[] = [];
    for (const x of intervals) {
      for (const y of intervals) {
        if (x.instance < y.instance && x.partition === y.partition && x.from < y.to && y.from < x.to) {
          overlaps.push(`partition ${x.partition}: ${x.instance} and ${y.instance}`);
        }
      }
    }
    expect(overlaps).toEqual([]);
    expect(intervals.filter((i) => i.instance === b.output().match(/"instance":"([^"]+)"/)?.[1]).length).toBeGreaterThan(0);

    // (e) every handover was graceful: an unbounded wait never became a
    // 1 ms timer that abandoned in-flight work (Node warns when it does).
    const overflows = procs.map((p) => ({ service: p.name, pid: p.pid, warnings: p.output().match(/TimeoutOverflowWarning.*/g) ?? [] }));
    expect(overflows).toEqual(procs.map((p) => ({ service: p.name, pid: p.pid, warnings: [] })));
  }, 170_000);
});
