/**
 * Reading a key through `GET /v1/aggregates/totals/:key` while its partition
 * moves between two aggregator instances (issue 14: results from the owner,
 * KV behind). A client posts the key's events one request after another;
 * another reads the key again and again, through both instances, while
 * the key's partition goes A -> B (B joins), B -> A (B is SIGKILLed),
 * A -> B (B comes back) and B -> A (B is SIGTERMed). Then:
 *   (a) no read was older than what KV held just before it was sent;
 *   (b) no read was older than an earlier read (the count never goes back);
 *   (c) owners answered reads from their state (NATS answers `result`,
 *       `mesh_result_reads_total{source="owner"}`), and reads went to KV
 *       while nobody owned the partition (`reason="no-owner"`);
 *   (d) once everything is processed, both KV and the reads say exactly
 *       how many events were posted.
 */
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { aggregateKvKey, Buckets, Headers, partitionOf } from '@mesh/contracts';
import { assignPartitions } from '@mesh/messaging';
import { eventually, orderEvent, postEvents, startNatsServer, startService, stopAll, type NatsServer, type ServiceProcess } from '@mesh/testing';
import { consumingPartitions, waitUntilDrained } from './support/mesh-state';
import { parsePrometheusText } from './support/prometheus-text';

const P = 16;
const TIME = '2026-03-01T12:00:30.000Z';
const PER_REQUEST = 5;

/** A key whose partition the rendezvous assignment gives to B when both instances live, so every join and leave of B moves it. */
function keyMovingTo(b: string, members: string[]): string {
  const bs = new Set(assignPartitions(members, P).get(b));
  for (let i = 0; ; i++) if (bs.has(partitionOf(`moving-${i}`, P))) return `moving-${i}`;
}

function countIn(text: string | undefined): number {
  if (!text) return 0;
  return (JSON.parse(text) as { windows: { count: number }[] }).windows.reduce((n, w) => n + w.count, 0);
}

describe('a key read through GET while its partition moves between aggregators', () => {
  let server: NatsServer;
  let nc: NatsConnection;
  let results: KV;
  const procs: ServiceProcess[] = [];
  const env = (id?: string) => ({
    NATS_URL: server.url,
    MESH_LEASE_TTL: '2s',
    MESH_ACK_WAIT: '4s',
    MESH_SHUTDOWN_TIMEOUT: '10s',
    ...(id ? { MESH_INSTANCE_ID: id } : {}),
  });
  const start = async (name: 'ingest' | 'router' | 'processor' | 'aggregator', id?: string) => {
    const p = await startService(name, env(id));
    procs.push(p);
    return p;
  };

  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connect({ servers: server.url });
  });
  afterAll(async () => {
    await stopAll(procs);
    await nc?.close();
    await server?.stop();
  }, 60_000);

  it('never answers older than KV or than an earlier read, and ends exact', async () => {
    const key = keyMovingTo('agg-b', ['agg-a', 'agg-b']);
    const partition = partitionOf(key, P);
    const a = await start('aggregator', 'agg-a');
    await start('processor');
    await start('router');
    const ingest = await start('ingest');
    results = await new Kvm(nc).open(Buckets.aggregates);
    const stored = async () => countIn((await results.get(aggregateKvKey('totals', key)))?.string());

    // What the owners answer, as a plain subscriber on the aggregators' reply inboxes sees it.
    const answers = { result: 0, kv: 0 };
    const watch = nc.subscribe('_INBOX_aggregator.>', {
      callback: (_err, m) => {
        const answer = m.headers?.get(Headers.queryAnswer);
        if (answer === 'result' || answer === 'kv') answers[answer]++;
      },
    });

    // The writer: one request after another; `posted` counts what ingest accepted.
    let posted = 0;
    let writing = true;
    const writer = (async () => {
      for (let n = 0; writing; n += PER_REQUEST) {
        await postEvents(
          ingest.url,
          Array.from({ length: PER_REQUEST }, (_, i) => orderEvent(key, n + i, 1, { time: TIME })),
          'batch',
        );
        posted += PER_REQUEST;
        await new Promise((r) => setTimeout(r, 5));
      }
    })();

    // The reader: KV first, then GET through one live instance after another.
    const live: ServiceProcess[] = [a];
    const problems: string[] = [];
    let reads = 0;
    let last = 0;
    let reading = true;
    const reader = (async () => {
      while (reading) {
        const via = live[reads % live.length];
        const floor = await stored();
        let res: Response;
        try {
          res = await fetch(`${via.url}/v1/aggregates/totals/${key}`);
        } catch {
          continue; // the instance went away under the request (SIGKILL): nothing was answered
        }
        if (res.status !== 200) {
          if (!live.includes(via)) continue; // an instance being stopped may refuse a request under way
          problems.push(`read ${reads} via ${via.pid}: status ${res.status} ${await res.text()}`);
          continue;
        }
        const count = countIn(await res.text());
        const ceiling = posted + PER_REQUEST; // at most one request is in flight
        if (count < floor) problems.push(`read ${reads}: ${count} < ${floor} in KV before it`);
        if (count < last) problems.push(`read ${reads}: ${count} < ${last} read before`);
        if (count > ceiling) problems.push(`read ${reads}: ${count} > ${ceiling} posted`);
        last = Math.max(last, count);
        reads++;
      }
    })();

    const owns = async (p: ServiceProcess) => (await consumingPartitions(p.url)).includes(partition);
    /** Reads go on (and events flow) for a while: `more` reads that saw the count grow. */
    const readOn = async (more: number) => {
      const [r0, c0] = [reads, last];
      await eventually(async () => reads >= r0 + more && last > c0, 30_000, 20);
    };

    await readOn(20);
    // B joins: the partition moves A -> B (A finishes its batch, writes, stops answering, releases).
    let b = await start('aggregator', 'agg-b');
    live.push(b);
    await eventually(() => owns(b), 30_000, 50);
    await readOn(40);
    // B dies: the partition comes back to A once B's lease lapses; meanwhile reads fall back to KV.
    live.splice(live.indexOf(b), 1);
    await b.kill();
    await eventually(() => owns(a), 30_000, 50);
    await readOn(40);
    // B comes back: A -> B again; then B leaves gracefully: B -> A.
    b = await start('aggregator', 'agg-b');
    live.push(b);
    await eventually(() => owns(b), 30_000, 50);
    await readOn(40);
    live.splice(live.indexOf(b), 1);
    expect(await b.stop()).toBe(0);
    await eventually(() => owns(a), 30_000, 50);
    await readOn(20);

    writing = false;
    await writer;
    expect(await waitUntilDrained(server.url, P, 60_000)).toBe(true);
    reading = false;
    await reader;
    watch.unsubscribe();

    // (a), (b): every read checked as it came.
    expect(problems).toEqual([]);
    // (c) the owners answered reads from their state; while B was dead nobody owned the partition and reads went to KV.
    expect(answers.result).toBeGreaterThan(reads / 10);
    const readsOfA = parsePrometheusText(await (await fetch(`${a.url}/metrics`)).text());
    expect(readsOfA.value('mesh_result_reads_total', { source: 'owner' })).toBeGreaterThan(0);
    expect(readsOfA.value('mesh_result_reads_total', { source: 'kv', reason: 'no-owner' })).toBeGreaterThan(0);
    // (d) exact, in KV and through both paths (A is the owner now; a fresh instance asks it).
    expect(await stored()).toBe(posted);
    const totalVia = async (p: ServiceProcess) => countIn(await (await fetch(`${p.url}/v1/aggregates/totals/${key}`)).text());
    expect(await totalVia(a)).toBe(posted);
    const c = await start('aggregator', 'agg-c');
    expect(await totalVia(c)).toBe(posted);
  }, 170_000);
});
