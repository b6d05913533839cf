/**
 * Routing end to end, by writing the route table in KV `mesh_routes` while
 * the mesh runs: a rule written takes effect for the next events and a
 * deleted one stops; a bad rule is reported and ignored while the rest keeps
 * working; drop rules drop; an event nobody takes goes to
 * `mesh.dlq.router.<p>` with headers saying why and where from; a weighted
 * route sends each event to the handler the router's weighting picks, the
 * same one again when the event is routed again; and a handler that re-keys
 * moves its output to the partition of the new key, where it is aggregated.
 *
 * Two test handlers, 'alpha' (declares `route.a`) and 'beta' (declares
 * `route.b`), are loaded from MESH_HANDLER_MODULES; each call is appended to
 * a file, so the test sees which handler got which event.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Buckets, decodeEnvelope, Headers, partitionOf, RouteKeyPrefix, Streams, Subjects, type CloudEvent } from '@mesh/contracts';
import { eventually, postEvents, startMesh, startNatsServer, stopAll, totalsFor, type NatsServer, type ServiceName, type ServiceProcess } from '@mesh/testing';
import { parseRule, RouteTable } from '../services/router/src/route-table';
import { deadLetters } from './support/mesh-state';
import { waitUntilSettled } from './support/settled';

const P = 16;
/** Short, so an event sent again after it is stored and routed again: a replay. */
const DUPLICATE_WINDOW_MS = 3_000;

interface Call {
  id: string;
  handler: string;
  type: string;
}

function handlerModule(dir: string): string {
  return `'use strict';
const fs = require('node:fs');
const path = require('node:path');
const record = (event, ctx) =>
  fs.appendFileSync(path.join(${JSON.stringify(dir)}, 'calls.ndjson'), JSON.stringify({ id: event.id, handler: ctx.handler, type: event.type }) + '\\n');
module.exports = [
  { name: 'alpha', types: ['route.a'], handle(event, ctx) { record(event, ctx); } },
  { name: 'beta', types: ['route.b'], handle(event, ctx) { record(event, ctx); } },
];
`;
}

describe('routing by the route table in mesh_routes, end to end', () => {
  let server: NatsServer;
  let mesh: Record<ServiceName, ServiceProcess>;
  let nc: NatsConnection;
  let routes: KV;
  let jsm: JetStreamManager;
  let dir: string;
  let serial = 0;

  const event = (type: string, extra: Partial<CloudEvent> = {}): CloudEvent => ({
    specversion: '1.0',
    id: `ev-${serial++}`,
    source: 'test://routing',
    type,
    partitionkey: `key-${serial % 7}`,
    ...extra,
  });
  const calls = (): Call[] => {
    const file = join(dir, 'calls.ndjson');
    if (!existsSync(file)) return [];
    return readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Call);
  };
  const handlersOf = (id: string) =>
    calls()
      .filter((c) => c.id === id)
      .map((c) => c.handler);
  const putRule = (name: string, value: unknown) => routes.put(`${RouteKeyPrefix.rule}${name}`, typeof value === 'string' ? value : JSON.stringify(value));
  const drained = () => waitUntilSettled(server.url, P, 60_000);
  const counters = async () => {
    const res = await fetch(`${mesh.router.url}/v1/routes`);
    return ((await res.json()) as { counters: { routed: number; duplicates: number; dropped: number; unroutable: number } }).counters;
  };
  /**
   * Send probe events (one at a time, each given a second) until one is
   * handled by `handler`: the router has applied the change to its table.
   * The KV watch is asynchronous, so "at once" means by the first probe
   * after it arrived; the events after that must all follow the change.
   */
  const untilRoutedTo = async (type: string, handler: string | ((probe: CloudEvent) => string)) => {
    const ok = await eventually(
      async () => {
        const probe = event(type);
        await postEvents(mesh.ingest.url, [probe], 'single');
        let got: string[] = [];
        await eventually(async () => (got = handlersOf(probe.id)).length > 0, 1_000, 50);
        return got.length === 1 && got[0] === (typeof handler === 'string' ? handler : handler(probe));
      },
      15_000,
      0,
    );
    expect(ok).toBe(true);
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mesh-routing-'));
    writeFileSync(join(dir, 'routing.handler.js'), handlerModule(dir));
    server = await startNatsServer();
    mesh = await startMesh(server.url, { MESH_HANDLER_MODULES: join(dir, 'routing.handler.js'), MESH_DUPLICATE_WINDOW: `${DUPLICATE_WINDOW_MS}ms` });
    nc = await connect({ servers: server.url });
    routes = await new Kvm(nc).open(Buckets.routes);
    jsm = await jetstreamManager(nc);
  }, 60_000);
  afterAll(async () => {
    if (mesh) await stopAll(Object.values(mesh));
    await nc?.close();
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('follows a rule written while the mesh runs for the next events, and stops following it once it is deleted', async () => {
    // The default route: alpha declares route.a.
    await untilRoutedTo('route.a', 'alpha');

    await putRule('a-to-beta', { match: 'route.a', to: ['beta'] });
    await untilRoutedTo('route.a', 'beta');
    const next = Array.from({ length: 10 }, () => event('route.a'));
    await postEvents(mesh.ingest.url, next, 'batch');
    await drained();
    expect(next.map((e) => handlersOf(e.id))).toEqual(next.map(() => ['beta']));

    await routes.delete(`${RouteKeyPrefix.rule}a-to-beta`);
    await untilRoutedTo('route.a', 'alpha');
    const after = Array.from({ length: 10 }, () => event('route.a'));
    await postEvents(mesh.ingest.url, after, 'batch');
    await drained();
    expect(after.map((e) => handlersOf(e.id))).toEqual(after.map(() => ['alpha']));
  }, 90_000);

  it('reports a bad rule with what is wrong, ignores it, and keeps routing by the rest of the table', async () => {
    // Each would send route.a to beta if it were taken.
    await putRule('bad-priority', { match: 'route.a', priority: 'high', to: ['beta'] });
    await putRule('not-json', '{"match": "route.a", "to": ["beta"]');
    await putRule('bad-match', { match: 'route.a b', to: ['beta'] });
    const reported = await eventually(
      async () => {
        const lines = mesh.router
          .output()
          .split('\n')
          .filter((l) => l.includes('"msg":"ignoring route rule"'));
        return ['rule.bad-priority', 'rule.not-json', 'rule.bad-match'].every((k) => lines.some((l) => l.includes(`"key":"${k}"`)));
      },
      10_000,
      100,
    );
    expect(reported).toBe(true);
    const lines = mesh.router
      .output()
      .split('\n')
      .filter((l) => l.includes('"msg":"ignoring route rule"'));
    expect(lines.find((l) => l.includes('rule.bad-priority'))).toContain('priority must be a number');
    expect(lines.find((l) => l.includes('rule.not-json'))).toContain('a rule must be a JSON object');
    expect(lines.find((l) => l.includes('rule.bad-match'))).toContain("match token 'a b'");

    // A good rule written after them is followed; the bad ones changed nothing.
    await putRule('b-to-alpha', { match: 'route.b', to: ['alpha'] });
    await untilRoutedTo('route.b', 'alpha');
    const a = Array.from({ length: 5 }, () => event('route.a'));
    const b = Array.from({ length: 5 }, () => event('route.b'));
    await postEvents(mesh.ingest.url, [...a, ...b], 'batch');
    await drained();
    expect([...a, ...b].map((e) => handlersOf(e.id))).toEqual([...a.map(() => ['alpha']), ...b.map(() => ['alpha'])]);
    for (const name of ['bad-priority', 'not-json', 'bad-match', 'b-to-alpha']) await routes.delete(`${RouteKeyPrefix.rule}${name}`);
    await untilRoutedTo('route.b', 'beta');
  }, 90_000);

  it('drops the events a drop rule matches, and only those', async () => {
    const before = await counters();
    await putRule('drop-tests', { match: 'route.b', where: { source: 'test://drop' }, drop: true });
    // Until the rule is in the table, a probe from test://drop reaches beta.
    const applied = await eventually(
      async () => {
        const probe = event('route.b', { source: 'test://drop' });
        await postEvents(mesh.ingest.url, [probe], 'single');
        await drained();
        return handlersOf(probe.id).length === 0;
      },
      15_000,
      0,
    );
    expect(applied).toBe(true);
    const dropsBefore = (await counters()).dropped;
    expect(dropsBefore).toBeGreaterThan(before.dropped);

    const dropped = Array.from({ length: 5 }, () => event('route.b', { source: 'test://drop' }));
    const kept = Array.from({ length: 5 }, () => event('route.b'));
    await postEvents(mesh.ingest.url, [...dropped, ...kept], 'batch');
    await drained();
    expect(dropped.map((e) => handlersOf(e.id))).toEqual(dropped.map(() => []));
    expect(kept.map((e) => handlersOf(e.id))).toEqual(kept.map(() => ['beta']));
    expect((await counters()).dropped - dropsBefore).toBe(dropped.length);
    await routes.delete(`${RouteKeyPrefix.rule}drop-tests`);
  }, 90_000);

  it('sends an event no rule or handler takes to mesh.dlq.router.<p> with headers saying why and where it came from', async () => {
    const before = await counters();
    const nobody = event('route.nobody', { partitionkey: 'lost-key' });
    await postEvents(mesh.ingest.url, [nobody], 'single');
    await drained();
    const p = partitionOf('lost-key', P);
    const dead = (await deadLetters(jsm)).filter((d) => d.subject === Subjects.dlq('router', p));
    expect(dead).toHaveLength(1);
    const [d] = dead;
    expect(d.headers[Headers.stage]).toBe('router');
    expect(d.headers[Headers.error]).toBe("no route for event type 'route.nobody': no rule matches it and no handler declares it");
    expect(d.headers[Headers.attempts]).toBe('1');
    expect(d.headers[Headers.originalStream]).toBe(Streams.ingest);
    expect(d.headers[Headers.originalSubject]).toBe(Subjects.ingest(p, 'route.nobody'));
    expect(Number(d.headers[Headers.originalSequence])).toBeGreaterThan(0);
    expect(decodeEnvelope(d.body)).toEqual([expect.objectContaining({ id: nobody.id, source: nobody.source, type: 'route.nobody' })]);
    expect(handlersOf(nobody.id)).toEqual([]);
    expect((await counters()).unroutable - before.unroutable).toBe(1);
  }, 60_000);

  it('sends each event of a weighted route to the handler the weighting picks, and to the same one when it is routed again', async () => {
    const canary = {
      match: 'route.w',
      to: [
        { handler: 'alpha', weight: 3 },
        { handler: 'beta', weight: 1 },
      ],
    };
    const table = new RouteTable();
    const parsed = parseRule('canary', canary);
    table.setRule(parsed.rule!);
    const pick = (e: CloudEvent) => {
      const d = table.route(e);
      if (d.kind !== 'handlers') throw new Error(`expected handlers, got ${JSON.stringify(d)}`);
      return d.handlers;
    };
    const weighted = Array.from({ length: 12 }, (_, i) => ({ ...event('route.w'), id: `w${i}-order` }));
    const expected = weighted.map(pick);
    // Fixed here, so a change of the weighting (which would move live traffic between the arms) fails this test.
    expect(expected.map((h) => h.join())).toEqual(['alpha', 'alpha', 'alpha', 'beta', 'beta', 'alpha', 'alpha', 'alpha', 'beta', 'alpha', 'alpha', 'beta']);

    await putRule('canary', canary);
    await untilRoutedTo('route.w', (probe) => pick(probe)[0]);
    // The probe above was picked by the weighting too; the next events must be as well.
    const sentAt = Date.now();
    await postEvents(mesh.ingest.url, weighted, 'batch');
    await drained();
    expect(weighted.map((e) => handlersOf(e.id))).toEqual(expected);

    // Once the duplicate window has passed, the same events are stored and routed again: the same picks.
    await new Promise((r) => setTimeout(r, Math.max(0, sentAt + DUPLICATE_WINDOW_MS + 500 - Date.now())));
    await postEvents(mesh.ingest.url, weighted, 'batch');
    await drained();
    expect(weighted.map((e) => handlersOf(e.id))).toEqual(expected.map((h) => [...h, ...h]));
    await routes.delete(`${RouteKeyPrefix.rule}canary`);
  }, 90_000);

  it('re-keys across partitions: what the rekey handler emits lands in the partition of the new key and is aggregated under it', async () => {
    // Customers in partitions of their own, none shared with the orders that pay for them.
    const orders = Array.from({ length: 6 }, (_, i) => `pay-order-${i}`);
    const orderPartitions = new Set(orders.map((k) => partitionOf(k, P)));
    const customers: string[] = [];
    for (let i = 0; customers.length < 2; i++) {
      const c = `customer-${i}`;
      if (!orderPartitions.has(partitionOf(c, P)) && !customers.some((o) => partitionOf(o, P) === partitionOf(c, P))) customers.push(c);
    }
    const payments = orders.map((key, i) => ({
      ...event('payment.received', { partitionkey: key }),
      data: { customerId: customers[i % 2], amount: 10 * (i + 1) },
    }));
    await postEvents(mesh.ingest.url, payments, 'batch');
    await drained();

    // 10+30+50 and 20+40+60.
    expect(await totalsFor(mesh.aggregator.url, [...customers, ...orders])).toEqual({
      [customers[0]]: { count: 3, sum: 90 },
      [customers[1]]: { count: 3, sum: 120 },
      ...Object.fromEntries(orders.map((k) => [k, { count: 0, sum: 0 }])),
    });
    // Stored on the customers' partitions, and only there.
    const info = await jsm.streams.info(Streams.processed, { subjects_filter: 'mesh.processed.*.payment.by-customer' });
    expect(Object.keys(info.state.subjects ?? {}).sort()).toEqual(customers.map((c) => Subjects.processed(partitionOf(c, P), 'payment.by-customer')).sort());
  }, 60_000);
});
