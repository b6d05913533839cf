/**
 * Graceful shutdown with real processes, while events stream in over HTTP.
 * SIGTERM to the processor: it finishes and acks what it received, exits 0
 * within MESH_SHUTDOWN_TIMEOUT (+5 s) saying 'stopped', and a new processor
 * takes over with nothing left unacknowledged and every key's totals exact.
 * SIGTERM to an ingest: every request it was answering gets an answer (202,
 * or 503 with Retry-After that the client retries on another ingest), and
 * nothing accepted is lost.
 */
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { CloudEvent } from '@mesh/contracts';
import {
  encodeRequest,
  eventually,
  orderEvent,
  postEvents,
  startMesh,
  startNatsServer,
  startService,
  totalsFor,
  type NatsServer,
  type ServiceName,
  type ServiceProcess,
  type Totals,
} from '@mesh/testing';
import { allAcked, consumingPartitions, partitionConsumers } from './support/mesh-state';

/** The default MESH_PARTITIONS. */
const P = 16;
const SHUTDOWN_TIMEOUT_MS = 5_000;

interface Workload {
  requests: CloudEvent[][];
  expected: Map<string, Totals>;
}

/** `events` order events over `keys` keys named `<prefix><n>`, in requests of `perRequest`, and the totals they must make. */
function workload(prefix: string, events: number, keys: number, perRequest: number): Workload {
  const all = Array.from({ length: events }, (_, n) => orderEvent(`${prefix}${n % keys}`, n, (n % 13) + 1));
  const expected = new Map<string, Totals>();
  for (const e of all) {
    const t = expected.get(e.partitionkey!) ?? { count: 0, sum: 0 };
    t.count += 1;
    t.sum += (e.data as { amount: number }).amount;
    expected.set(e.partitionkey!, t);
  }
  const requests: CloudEvent[][] = [];
  for (let i = 0; i < all.length; i += perRequest) requests.push(all.slice(i, i + perRequest));
  return { requests, expected };
}

/** The JSON log lines a service wrote, by message. */
function logged(p: ServiceProcess, msg: string): Record<string, unknown>[] {
  return p
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => {
      try {
        return JSON.parse(line) as Record<string, unknown>;
      } catch {
        return {};
      }
    })
    .filter((entry) => entry.msg === msg);
}

describe('graceful shutdown on SIGTERM while events stream in', () => {
  let server: NatsServer;
  let mesh: Record<ServiceName, ServiceProcess> | undefined;
  /** Every process started here, so afterAll stops each by its pid. */
  const started: ServiceProcess[] = [];
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  const env = () => ({ NATS_URL: server.url, MESH_SHUTDOWN_TIMEOUT: `${SHUTDOWN_TIMEOUT_MS}ms` });

  /** Totals of every key reach the expected counts, then, once every stage has acked everything, equal them exactly. */
  async function expectExactTotals(aggregatorUrl: string, expected: Map<string, Totals>): Promise<void> {
    const keys = [...expected.keys()];
    const reached = await eventually(
      async () => {
        const now = await totalsFor(aggregatorUrl, keys);
        return keys.every((k) => now[k].count >= expected.get(k)!.count);
      },
      45_000,
      250,
    );
    expect(reached).toBe(true);
    const settled = await eventually(
      async () => {
        const states = await Promise.all((['router', 'processor', 'aggregator'] as const).map((s) => partitionConsumers(jsm, s, P)));
        return states.every(allAcked);
      },
      30_000,
      100,
    );
    expect(settled).toBe(true);
    expect(await totalsFor(aggregatorUrl, keys)).toEqual(Object.fromEntries(expected));
  }

  beforeAll(async () => {
    server = await startNatsServer();
    mesh = await startMesh(server.url, { MESH_SHUTDOWN_TIMEOUT: `${SHUTDOWN_TIMEOUT_MS}ms` });
    started.push(...Object.values(mesh));
    nc = await connect({ servers: server.url });
    jsm = await jetstreamManager(nc);
    // /readyz can answer 200 before the first ownership round; the stages must own their partitions first.
    for (const stage of [mesh.router, mesh.processor, mesh.aggregator]) {
      const owning = await eventually(async () => (await consumingPartitions(stage.url)).length === P, 20_000, 100);
      if (!owning) throw new Error(`${stage.name} did not consume all ${P} partitions within 20 s`);
    }
  }, 60_000);

  afterAll(async () => {
    await nc?.close();
    await Promise.all(started.map((p) => p.stop()));
    await server?.stop();
  }, 60_000);

  it('stops the processor mid-stream with exit 0 and nothing left unacked; a new processor makes every total exact', async () => {
    const { requests, expected } = workload('sd-', 8_000, 60, 100);
    let sent = 0;
    let stopDone!: () => void;
    const stopped = new Promise<void>((r) => (stopDone = r));
    // Two clients posting batches back to back; they keep the last requests
    // until the stop is over, so the stream goes on through the stop and after it,
    // however long the stop takes on a loaded machine.
    const produce = Promise.all(
      [0, 1].map(async (w) => {
        for (let i = w; i < requests.length; i += 2) {
          if (i >= requests.length - 10) await stopped;
          await postEvents(mesh!.ingest.url, requests[i], i % 4 < 2 ? 'batch' : 'ndjson', 60_000);
          sent += requests[i].length;
          await new Promise((r) => setTimeout(r, 20));
        }
      }),
    );

    const old = mesh!.processor;
    let code: number | null = null;
    let took = 0;
    let sentAtStop = 0;
    let ackPendingAfterStop: string[] = [];
    try {
      expect(await eventually(async () => sent >= 2_000, 30_000, 20)).toBe(true);
      const t0 = Date.now();
      code = await old.stop();
      took = Date.now() - t0;
      sentAtStop = sent;
      stopDone();
      ackPendingAfterStop = (await partitionConsumers(jsm, 'processor', P)).filter((c) => c.numAckPending > 0).map((c) => `${c.name}: ${c.numAckPending}`);
      started.push(await startService('processor', env()));
    } finally {
      // However this ends, the clients finish before the next test starts.
      stopDone();
      await produce.catch(() => undefined);
    }
    await produce;

    expect(code).toBe(0);
    expect(took).toBeLessThanOrEqual(SHUTDOWN_TIMEOUT_MS + 5_000);
    expect(logged(old, 'shutting down')).toHaveLength(1);
    expect(logged(old, 'stopped')).toHaveLength(1);
    // It finished and acked everything it had received: nothing waits for the ack wait.
    expect(ackPendingAfterStop).toEqual([]);
    // The stream went on meanwhile, and all of it was accepted.
    expect(sentAtStop).toBeLessThan(8_000);
    expect(sent).toBe(8_000);

    await expectExactTotals(mesh!.aggregator.url, expected);
    const consumers = await partitionConsumers(jsm, 'processor', P);
    expect(consumers.map((c) => c.name)).toEqual(Array.from({ length: P }, (_, p) => `processor-p${String(p).padStart(2, '0')}`));
    expect(consumers.filter((c) => c.numAckPending !== 0 || c.numPending !== 0)).toEqual([]);
  }, 120_000);

  it('answers every request an ingest was handling when it got SIGTERM (202, or 503 with Retry-After) and loses nothing accepted', async () => {
    const doomed = mesh!.ingest;
    const spare = await startService('ingest', env());
    started.push(spare);
    const { requests, expected } = workload('si-', 6_000, 50, 60);

    let sigtermAt = Number.POSITIVE_INFINITY;
    let done = 0;
    const answers = { accepted: 0, unavailable: 0, refusedAfterSigterm: 0 };
    const problems: string[] = [];
    let inFlightAtSigterm = 0;
    const inFlight = new Set<number>();

    /** One request to the ingest being stopped; false when the client must go to the other instance. */
    const tryDoomed = async (i: number): Promise<boolean> => {
      const { contentType, body } = encodeRequest(requests[i], 'batch');
      const startedAt = performance.now();
      inFlight.add(i);
      try {
        const res = await fetch(`${doomed.url}/v1/events`, { method: 'POST', headers: { 'content-type': contentType }, body });
        const text = await res.text();
        if (res.status === 202) {
          answers.accepted++;
          return true;
        }
        if (res.status === 503) {
          answers.unavailable++;
          if (!/^\d+$/.test(res.headers.get('retry-after') ?? '')) problems.push(`request ${i}: 503 without a Retry-After: ${text}`);
          return false;
        }
        problems.push(`request ${i}: answered ${res.status}: ${text}`);
        return false;
      } catch (err) {
        // A request sent before SIGTERM must be answered; after it, a refused or closed connection just means "go elsewhere".
        if (startedAt < sigtermAt)
          problems.push(`request ${i}, sent before SIGTERM, got no answer: ${(err as Error).message} ${String((err as { cause?: unknown }).cause ?? '')}`);
        else answers.refusedAfterSigterm++;
        return false;
      } finally {
        inFlight.delete(i);
      }
    };

    let next = 0;
    const clients = Array.from({ length: 8 }, async () => {
      let useSpare = false;
      while (next < requests.length) {
        const i = next++;
        if (!useSpare && (await tryDoomed(i))) {
          done++;
          continue;
        }
        // Told to go elsewhere (or could not reach it): the same request on the other instance, for good.
        useSpare = true;
        await postEvents(spare.url, requests[i], 'batch', 30_000);
        done++;
      }
    });

    expect(await eventually(async () => done >= requests.length / 4, 30_000, 5)).toBe(true);
    sigtermAt = performance.now();
    inFlightAtSigterm = inFlight.size;
    const t0 = Date.now();
    const exit = doomed.stop();
    await Promise.all(clients);
    const code = await exit;

    expect(problems).toEqual([]);
    expect(inFlightAtSigterm).toBeGreaterThan(0);
    expect(answers.accepted).toBeGreaterThan(0);
    expect(done).toBe(requests.length);
    expect(code).toBe(0);
    expect(Date.now() - t0).toBeLessThanOrEqual(SHUTDOWN_TIMEOUT_MS + 5_000);
    expect(logged(doomed, 'stopped')).toHaveLength(1);

    await expectExactTotals(mesh!.aggregator.url, expected);
  }, 120_000);
});
