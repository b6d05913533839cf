/**
 * Handler services end to end, with real processes: the service the
 * generator made (test/fixtures/payouts, checked equal to the generator's
 * output by tools/mesh/src/generators/handler-service-generator.spec.ts),
 * built by `npm run build`, beside the four services of the mesh.
 *
 * - It gets exactly its events (payout.requested), the processor exactly its own.
 * - SIGKILLed and restarted mid-stream: the totals stay exact.
 * - Two instances share its partitions.
 * - While it is stopped, its events wait in JetStream: nothing dead-lettered,
 *   nothing lost; they are handled once it starts again.
 * - A rolling update that adds a handler: the new instance (hosting every
 *   handler declared for the service) takes the partitions at once; nothing
 *   waits, nothing is dead-lettered.
 * - An instance without a declared handler leaves its events waiting (no
 *   dead letter) until an instance that hosts it owns the partition;
 *   `mesh handlers rm` dead-letters those still waiting, with the reason.
 * - `mesh replay` pauses it, recreates its consumers and rebuilds what it produced.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Headers, partitionOf, type CloudEvent } from '@mesh/contracts';
import {
  eventually,
  orderEvent,
  postEvents,
  RepoRoot,
  startMesh,
  startNatsServer,
  startProcess,
  startService,
  stopAll,
  totalsFor,
  type NatsServer,
  type ProcessHandle,
  type ServiceName,
  type ServiceProcess,
  type Totals,
} from '@mesh/testing';
import { runCli } from '../tools/mesh/src/cli';
import { MemoryOutput } from '../tools/mesh/src/output';
import type { HandlerRow } from '../tools/mesh/src/handlers';
import { expectExactTotalsOnceDrained } from './support/exact-totals';
import { consumingPartitions, deadLetters, waitUntilDrained } from './support/mesh-state';

const P = 8;
const PayoutsMain = join(RepoRoot, 'test/fixtures/payouts/dist/main.js');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The 'extra' handler of the new processor version in the rolling update: passes the data on. */
const ExtraModule = `'use strict';
module.exports = { name: 'extra', types: ['extra.requested'], handle: (event) => ({ type: 'extra.done', data: event.data }) };
`;

describe('a generated handler service beside the mesh', () => {
  let server: NatsServer;
  let mesh: Record<ServiceName, ServiceProcess>;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  let dir: string;
  const payouts: ProcessHandle[] = [];
  const processors: ServiceProcess[] = [];
  const env = () => ({ NATS_URL: server.url, MESH_PARTITIONS: String(P), MESH_LEASE_TTL: '2s', MESH_ACK_WAIT: '5s' });
  const startPayouts = async () => {
    const p = await startProcess('payouts', PayoutsMain, env());
    payouts.push(p);
    return p;
  };
  const live = (list: ProcessHandle[]) => list.filter((p) => p.exitSignal() === null && !exited.has(p));
  const exited = new Set<ProcessHandle>();
  const stop = async (p: ProcessHandle) => {
    await p.stop();
    exited.add(p);
  };

  const payout = (key: string, n: number, amount: number) => orderEvent(key, n, amount, { type: 'payout.requested', source: 'test://payouts' });
  const extra = (key: string, n: number, amount: number) => orderEvent(key, n, amount, { type: 'extra.requested', source: 'test://extra' });

  /** Send `perKey` events for each key, in waves of one event per key; what the totals must become. */
  async function send(make: (key: string, n: number, amount: number) => CloudEvent, keys: string[], perKey: number, between?: (wave: number) => Promise<void>) {
    const expected = new Map<string, Totals>(keys.map((k) => [k, { count: 0, sum: 0 }]));
    for (let n = 1; n <= perKey; n++) {
      const wave = keys.map((k, i) => make(k, n, n * 10 + i));
      await postEvents(mesh.ingest.url, wave, 'batch');
      for (const e of wave) {
        const t = expected.get(e.partitionkey!)!;
        t.count++;
        t.sum += (e.data as { amount: number }).amount;
      }
      await between?.(n);
    }
    return expected;
  }

  const drained = (stages: string[]) => () => waitUntilDrained(server.url, P, 90_000, {}, stages);
  const withPayouts = ['router', 'processor', 'payouts', 'aggregator'];

  async function handlersTable(): Promise<HandlerRow[]> {
    const out = new MemoryOutput();
    const code = await runCli(['handlers', '--json', '--nats', server.url], {}, out);
    expect({ code, stderr: out.stderr }).toEqual({ code: 0, stderr: [] });
    return out.json<{ handlers: HandlerRow[] }>().handlers;
  }

  async function instanceOf(url: string): Promise<string> {
    return ((await (await fetch(`${url}/readyz`)).json()) as { instance: string }).instance;
  }

  async function counters(url: string): Promise<{ processed: number; failed: number }> {
    const res = await fetch(`${url}/v1/handlers`);
    return ((await res.json()) as { counters: { processed: number; failed: number } }).counters;
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mesh-hsvc-'));
    writeFileSync(join(dir, 'extra.js'), ExtraModule);
    server = await startNatsServer();
    mesh = await startMesh(server.url, env());
    processors.push(mesh.processor);
    nc = await connect({ servers: server.url });
    jsm = await jetstreamManager(nc);
  }, 120_000);

  afterAll(async () => {
    await nc?.close();
    await stopAll([...payouts, ...processors.filter((p) => p !== mesh?.processor)]);
    if (mesh) await stopAll(Object.values(mesh));
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  }, 120_000);

  it('gets exactly its events, as soon as it starts, and the processor exactly its own', async () => {
    const a = await startPayouts();
    const payoutKeys = Array.from({ length: 8 }, (_, i) => `pay-${i}`);
    const orderKeys = Array.from({ length: 4 }, (_, i) => `ord-${i}`);
    const expected = await send(payout, payoutKeys, 5);
    await postEvents(
      mesh.ingest.url,
      orderKeys.flatMap((k) => [1, 2, 3].map((n) => orderEvent(k, n, 5))),
      'batch',
    );

    await expectExactTotalsOnceDrained(() => mesh.aggregator.url, expected, drained(withPayouts));
    expect(await counters(a.url)).toMatchObject({ processed: 40, failed: 0 });
    expect(await counters(mesh.processor.url)).toMatchObject({ processed: 12, failed: 0 });
    expect(await deadLetters(jsm)).toEqual([]);

    const table = await handlersTable();
    expect(table.find((r) => r.handler === 'payouts')).toMatchObject({
      service: 'payouts',
      types: ['payout.requested'],
      instances: [expect.any(String)],
      lag: 0,
    });
    expect(table.find((r) => r.handler === 'orders')).toMatchObject({ service: 'processor', instances: [expect.any(String)], lag: 0 });
  }, 180_000);

  it('keeps the totals exact when it is SIGKILLed and restarted mid-stream', async () => {
    const keys = Array.from({ length: 8 }, (_, i) => `kill-${i}`);
    const expected = await send(payout, keys, 10, async (wave) => {
      if (wave === 3) {
        const victim = live(payouts)[0];
        await victim.kill();
        exited.add(victim);
      }
      if (wave === 5) await startPayouts();
      await sleep(100);
    });
    expect(payouts.filter((p) => p.exitSignal() === 'SIGKILL')).toHaveLength(1);
    await expectExactTotalsOnceDrained(() => mesh.aggregator.url, expected, drained(withPayouts));
    expect(await deadLetters(jsm)).toEqual([]);
  }, 180_000);

  it('shares its partitions between two instances', async () => {
    const [a] = live(payouts);
    const b = await startPayouts();
    let split: number[][] = [];
    await eventually(
      async () => {
        split = [await consumingPartitions(a.url), await consumingPartitions(b.url)];
        return split.every((s) => s.length > 0) && split[0].length + split[1].length === P;
      },
      30_000,
      200,
      () => split,
    );
    expect([...split[0], ...split[1]].sort((x, y) => x - y)).toEqual(Array.from({ length: P }, (_, p) => p));
    const before = [await counters(a.url), await counters(b.url)];

    const keys = Array.from({ length: 16 }, (_, i) => `two-${i}`);
    expect(new Set(keys.map((k) => split[0].includes(partitionOf(k, P)))).size).toBe(2); // keys on both instances
    const expected = await send(payout, keys, 4);
    await expectExactTotalsOnceDrained(() => mesh.aggregator.url, expected, drained(withPayouts));
    const after = [await counters(a.url), await counters(b.url)];
    expect(after[0].processed - before[0].processed).toBeGreaterThan(0);
    expect(after[1].processed - before[1].processed).toBeGreaterThan(0);
    expect(after[0].processed - before[0].processed + (after[1].processed - before[1].processed)).toBe(64);
    const row = (await handlersTable()).find((r) => r.handler === 'payouts')!;
    expect(row.instances.length).toBe(2);
    expect(row.hosting.length).toBe(2);
  }, 180_000);

  it('while stopped, dead-letters nothing and loses nothing: its events wait and are handled when it starts', async () => {
    for (const p of live(payouts)) await stop(p);
    const keys = Array.from({ length: 8 }, (_, i) => `down-${i}`);
    const expected = await send(payout, keys, 3);
    // Routed to its consumers, where they wait.
    await waitUntilDrained(server.url, P, 60_000, {}, ['router']);
    await sleep(3_000);
    expect(await deadLetters(jsm)).toEqual([]);
    expect(Object.values(await totalsFor(mesh.aggregator.url, keys)).map((t) => t.count)).toEqual(keys.map(() => 0));
    expect((await handlersTable()).find((r) => r.handler === 'payouts')).toMatchObject({ instances: [], lag: expect.any(Number) });
    expect((await handlersTable()).find((r) => r.handler === 'payouts')!.lag).toBeGreaterThan(0);

    await startPayouts();
    await expectExactTotalsOnceDrained(() => mesh.aggregator.url, expected, drained(withPayouts), 90_000);
    expect(await deadLetters(jsm)).toEqual([]);
  }, 180_000);

  it('in a rolling update that adds a handler, gives the new instance the partitions at once: nothing waits, nothing is dead-lettered', async () => {
    const old = mesh.processor;
    const next = await startService('processor', { ...env(), MESH_HANDLER_MODULES: join(dir, 'extra.js') });
    processors.push(next);
    // The new instance hosts every handler declared for the processor; the old one lacks 'extra' and gives its partitions up.
    let split: number[][] = [];
    await eventually(
      async () => {
        split = [await consumingPartitions(old.url), await consumingPartitions(next.url)];
        return split[0].length === 0 && split[1].length === P;
      },
      30_000,
      200,
      () => split,
    );
    const keys = Array.from({ length: 12 }, (_, i) => `roll-${i}`);
    const expected = await send(extra, keys, 3);
    await expectExactTotalsOnceDrained(() => mesh.aggregator.url, expected, drained(['router', 'processor', 'aggregator']));
    expect(await deadLetters(jsm)).toEqual([]);
    const row = (await handlersTable()).find((r) => r.handler === 'extra')!;
    expect(row).toMatchObject({ service: 'processor', lag: 0 });
    const [oldId, nextId] = [await instanceOf(old.url), await instanceOf(next.url)];
    // By name, so a failure shows which member is unexpected.
    expect({ instances: [...row.instances].sort(), hosting: row.hosting }).toEqual({ instances: [oldId, nextId].sort(), hosting: [nextId] });
    await stop(old);
  }, 240_000);

  it('leaves the events of a handler no owner hosts waiting until a host owns them; mesh handlers rm dead-letters those still waiting, saying so', async () => {
    const withExtra = processors[processors.length - 1];
    const without = await startService('processor', env());
    processors.push(without);
    await stop(withExtra);
    await eventually(async () => (await consumingPartitions(without.url)).length === P, 30_000, 200);

    // Declared for the processor, hosted by no instance: they wait, in JetStream and the retry ledger.
    const first = Array.from({ length: 5 }, (_, i) => `wait-${i}`);
    const expected = await send(extra, first, 2);
    await waitUntilDrained(server.url, P, 60_000, {}, ['router']);
    await sleep(3_000);
    expect(await deadLetters(jsm)).toEqual([]);
    expect(Object.values(await totalsFor(mesh.aggregator.url, first)).map((t) => t.count)).toEqual(first.map(() => 0));

    // An instance that hosts it comes: it takes the partitions and handles them, exactly.
    const host = await startService('processor', { ...env(), MESH_HANDLER_MODULES: join(dir, 'extra.js') });
    processors.push(host);
    await expectExactTotalsOnceDrained(() => mesh.aggregator.url, expected, drained(['router', 'processor', 'aggregator']));
    expect(await deadLetters(jsm)).toEqual([]);
    await stop(host);
    await eventually(async () => (await consumingPartitions(without.url)).length === P, 30_000, 200);

    const second = Array.from({ length: 5 }, (_, i) => `gone-${i}`);
    await send(extra, second, 2);
    await waitUntilDrained(server.url, P, 60_000, {}, ['router']);
    await sleep(2_000);
    expect(await deadLetters(jsm)).toEqual([]);

    const out = new MemoryOutput();
    expect(await runCli(['handlers', 'rm', 'extra', '--nats', server.url], {}, out)).toBe(2);
    expect(out.stderr.join('\n')).toMatch(/would remove handler 'extra'.*run again with --yes/);
    expect(await runCli(['handlers', 'rm', 'extra', '--yes', '--nats', server.url], {}, new MemoryOutput())).toBe(0);

    let letters: Awaited<ReturnType<typeof deadLetters>> = [];
    await eventually(
      async () => (letters = await deadLetters(jsm)).length === 10,
      60_000,
      250,
      () => letters.length,
    );
    await sleep(1_000);
    letters = await deadLetters(jsm);
    expect(letters).toHaveLength(10);
    for (const l of letters) {
      expect(l.subject).toMatch(/^mesh\.dlq\.processor\.\d+$/);
      expect(l.headers[Headers.handler]).toBe('extra');
      expect(l.headers[Headers.error]).toContain("handler 'extra' was removed with mesh handlers rm");
    }
    expect(new Set(letters.map((l) => (JSON.parse(l.text) as CloudEvent[])[0].partitionkey))).toEqual(new Set(second));
    expect((await handlersTable()).map((r) => r.handler)).not.toContain('extra');
  }, 240_000);

  it('is replayed with the rest: mesh replay recreates its consumers and rebuilds exactly what it produced', async () => {
    expect(live(payouts).length).toBeGreaterThan(0);
    const keys = [...Array.from({ length: 8 }, (_, i) => [`pay-${i}`, `kill-${i}`, `down-${i}`]).flat(), ...Array.from({ length: 16 }, (_, i) => `two-${i}`)];
    const before = new Map(Object.entries(await totalsFor(mesh.aggregator.url, keys)));
    expect([...before.values()].every((t) => t.count > 0)).toBe(true);

    const dry = new MemoryOutput();
    expect(await runCli(['replay', '--from', 'beginning', '--dry-run', '--nats', server.url], {}, dry)).toBe(0);
    expect(dry.text).toContain(`recreate consumers: MESH_ROUTED/payouts-p00..p0${P - 1} (${P})`);
    expect(dry.text).toContain('purge mesh_checkpoints payouts.>');

    const out = new MemoryOutput();
    expect({ code: await runCli(['replay', '--from', 'beginning', '--yes', '--nats', server.url], {}, out), err: out.stderr }).toEqual({ code: 0, err: [] });
    expect(out.text).toContain('resumed: epoch 1');
    await expectExactTotalsOnceDrained(() => mesh.aggregator.url, before, drained(withPayouts));
  }, 240_000);
});
