/**
 * Ingest under overload, as a flood of clients would see it: a real mesh,
 * a rate limit and an in-flight bound set, and for 30 s as many 100-event
 * requests as one client process can offer with 64 in flight (many times
 * what the mesh stores on this machine). Ingest's memory stays bounded
 * (peak RSS under 200 MB), every request is answered 202, 429 or 503 (no
 * other status, no connection error), and every event answered 202 is
 * counted exactly once in the aggregates: a refusal stored nothing.
 */
import { Agent, request } from 'node:http';
import { readFileSync } from 'node:fs';
import {
  eventually,
  orderEvent,
  startMesh,
  startNatsServer,
  stopAll,
  totalsFor,
  type NatsServer,
  type ServiceName,
  type ServiceProcess,
  type Totals,
} from '@mesh/testing';
import { waitUntilDrained } from './support/mesh-state';

const LOAD_MS = 30_000;
const IN_FLIGHT = 64;
const EVENTS_PER_REQUEST = 100;
/** A bound on the requests of the run, whatever the machine's speed. */
const MAX_REQUESTS = 400_000;
const KEYS = 40;
const PARTITIONS = 8;
const RATE_EVENTS = 2_000;
const RSS_LIMIT_KB = 200 * 1024;

function vm(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

interface Body {
  text: string;
  perKey: Map<string, Totals>;
}

let made = 0;
/** A 100-event batch with fresh ids; what it adds to each key's totals if accepted. */
function makeBody(): Body {
  const perKey = new Map<string, Totals>();
  const events = [];
  for (let i = 0; i < EVENTS_PER_REQUEST; i++) {
    const n = made++;
    const key = `flood-${n % KEYS}`;
    const amount = (n % 13) + 1;
    events.push(orderEvent(key, n, amount));
    const t = perKey.get(key) ?? { count: 0, sum: 0 };
    t.count += 1;
    t.sum += amount;
    perKey.set(key, t);
  }
  return { text: JSON.stringify(events), perKey };
}

function post(agent: Agent, port: number, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        agent,
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/v1/events',
        headers: { 'content-type': 'application/cloudevents-batch+json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('ingest under overload', () => {
  let server: NatsServer;
  let mesh: Record<ServiceName, ServiceProcess>;

  beforeAll(async () => {
    server = await startNatsServer();
    mesh = await startMesh(server.url, {
      MESH_PARTITIONS: String(PARTITIONS),
      MESH_RATE_LIMIT_EVENTS: String(RATE_EVENTS),
      MESH_MAX_IN_FLIGHT_EVENTS: '2000',
      MESH_MAX_IN_FLIGHT_BYTES: String(4 * 1024 * 1024),
    });
  }, 60_000);
  afterAll(async () => {
    if (mesh) await stopAll(Object.values(mesh));
    await server?.stop();
  }, 60_000);

  it('keeps its memory bounded, answers only 202, 429 or 503, and counts every accepted event exactly once', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: IN_FLIGHT });
    const expected = new Map<string, Totals>();
    const statuses = new Map<string, number>();
    const unexpected: string[] = [];
    const retry: Body[] = [];
    let requests = 0;
    let peakRss = 0;
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, vm(mesh.ingest.pid, 'VmRSS'))), 250);
    const end = Date.now() + LOAD_MS;
    try {
      await Promise.all(
        Array.from({ length: IN_FLIGHT }, async () => {
          while (Date.now() < end && requests < MAX_REQUESTS) {
            requests++;
            // A refused body is offered again (its events were not stored), so bodies stay cheap to make.
            const body = retry.pop() ?? makeBody();
            let status: number;
            try {
              status = await post(agent, mesh.ingest.port, body.text);
            } catch (err) {
              unexpected.push(`connection error: ${(err as Error).message}`);
              continue;
            }
            statuses.set(String(status), (statuses.get(String(status)) ?? 0) + 1);
            if (status === 202) {
              for (const [k, t] of body.perKey) {
                const e = expected.get(k) ?? { count: 0, sum: 0 };
                expected.set(k, { count: e.count + t.count, sum: e.sum + t.sum });
              }
            } else if (status === 429 || status === 503) {
              if (retry.length < 1000) retry.push(body);
            } else unexpected.push(`status ${status}`);
          }
        }),
      );
    } finally {
      clearInterval(sampler);
      agent.destroy();
    }
    const hwm = vm(mesh.ingest.pid, 'VmHWM');
    const accepted = [...expected.values()].reduce((n, t) => n + t.count, 0);
    const offered = requests * EVENTS_PER_REQUEST;
    process.stdout.write(
      `overload: ${requests} requests (${Math.round(offered / (LOAD_MS / 1000))} events/s offered), ${accepted} events accepted ` +
        `(${Math.round(accepted / (LOAD_MS / 1000))}/s), statuses ${JSON.stringify(Object.fromEntries(statuses))}, ingest peak RSS ${Math.round(Math.max(hwm, peakRss) / 1024)} MB\n`,
    );

    expect(unexpected.slice(0, 10)).toEqual([]);
    expect(Math.max(hwm, peakRss)).toBeLessThan(RSS_LIMIT_KB);
    // It was an overload: at least 20 times the load this ingest is configured to sustain (its rate limit) was
    // offered, most of it was refused, and the limit let work through.
    expect(offered / (LOAD_MS / 1000)).toBeGreaterThanOrEqual(20 * RATE_EVENTS);
    expect(statuses.get('429') ?? 0).toBeGreaterThan(statuses.get('202') ?? 0);
    expect(accepted).toBeGreaterThan(0);
    expect(accepted).toBeLessThanOrEqual(RATE_EVENTS * (LOAD_MS / 1000 + 2));

    const keys = [...expected.keys()];
    const done = await eventually(
      async () => {
        const actual = await totalsFor(mesh.aggregator.url, keys);
        return keys.every((k) => actual[k].count >= expected.get(k)!.count);
      },
      60_000,
      500,
    );
    if (!done) {
      const actual = await totalsFor(mesh.aggregator.url, keys);
      const short = keys.filter((k) => actual[k].count < expected.get(k)!.count).map((k) => `${k}: ${actual[k].count}/${expected.get(k)!.count}`);
      const problems = Object.values(mesh).flatMap((s) =>
        s
          .output()
          .split('\n')
          .filter((l) => /"level":"(warn|error)"/.test(l))
          .slice(-5),
      );
      process.stdout.write(`short keys: ${short.join(', ')}\nwarnings:\n${problems.join('\n')}\n`);
    }
    expect(done).toBe(true);
    expect(await waitUntilDrained(server.url, PARTITIONS, 30_000)).toBe(true);
    expect(await totalsFor(mesh.aggregator.url, keys)).toEqual(Object.fromEntries(expected));
  }, 150_000);
});
