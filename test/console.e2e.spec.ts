/**
 * The console in a real browser (Debian's Chromium, driven by
 * playwright-core) against a real mesh: the overview shows the four stages
 * with the rates of the load being posted, a rule added on the routes page
 * routes the next events, a dead letter redriven from the page is counted in
 * its key's totals, and a SIGKILLed processor is shown down within the lease
 * TTL while its partitions move to the survivor. A screenshot of each page
 * is kept in test-artifacts/console/.
 */
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/nats-core';
import type { Browser, Page } from 'playwright-core';
import { Buckets, Headers, RouteKeyPrefix, type CloudEvent } from '@mesh/contracts';
import {
  eventually,
  orderEvent,
  postEvents,
  startMesh,
  startNatsServer,
  startService,
  stopAll,
  totalsFor,
  totalsOf,
  type NatsServer,
  type ServiceName,
  type ServiceProcess,
} from '@mesh/testing';
import { consolePage, launchChromium, screenshot } from './support/console-browser';
import { deadLetters } from './support/mesh-state';

const LEASE_TTL_MS = 5_000;
/** Events per second the overview test posts, one per request. */
const RATE = 40;

describe('the console in a browser, on a running mesh', () => {
  let server: NatsServer;
  let mesh: Record<ServiceName, ServiceProcess>;
  let second: ServiceProcess;
  let third: ServiceProcess | undefined;
  let consoleService: ServiceProcess;
  let browser: Browser;
  let page: Page;
  let errors: string[];
  let elsewhere: string[];
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  let serial = 0;

  const event = (type: string, key: string, amount: number): CloudEvent => orderEvent(key, serial++, amount, { type, id: `console-${serial}` });
  const attr = async (selector: string, name: string) => page.locator(selector).first().getAttribute(name);

  beforeAll(async () => {
    server = await startNatsServer();
    const env = { MESH_LEASE_TTL: `${LEASE_TTL_MS}ms` };
    mesh = await startMesh(server.url, env);
    second = await startService('processor', { NATS_URL: server.url, ...env });
    consoleService = await startService('console', { NATS_URL: server.url, MESH_CONSOLE_REFRESH: '1s' });
    nc = await connect({ servers: server.url });
    jsm = await jetstreamManager(nc);
    browser = await launchChromium();
    ({ page, errors, elsewhere } = await consolePage(browser, consoleService.url));
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await stopAll([consoleService, second, third, ...Object.values(mesh ?? {})]);
    await nc?.close();
    await server?.stop();
  }, 60_000);

  afterEach(() => {
    // No script error on any page, and nothing fetched from anywhere but the console.
    expect(errors).toEqual([]);
    expect(elsewhere).toEqual([]);
  });

  it('shows the four stages with their instances and rates within 10% of the load being posted', async () => {
    await page.goto(`${consoleService.url}/#/overview`);
    for (const stage of ['ingest', 'router', 'processor', 'aggregator']) await page.locator(`[data-service="${stage}"]`).waitFor();
    expect(await page.locator('[data-service="processor"] [data-status="up"]').count()).toBe(2);

    // A steady load: RATE single-event requests per second, paced by the clock.
    let stop = false;
    let sent = 0;
    const started = Date.now();
    const load = (async () => {
      while (!stop) {
        const due = Math.floor(((Date.now() - started) * RATE) / 1000) - sent;
        const batch = Array.from({ length: due }, () => event('order.created', `rate-${sent % 20}`, 1));
        sent += due;
        await Promise.all(batch.map((e) => postEvents(mesh.ingest.url, [e], 'single')));
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const fields = [
      ['ingest', 'data-in'],
      ['ingest', 'data-out'],
      ['router', 'data-in'],
      ['router', 'data-out'],
      ['processor', 'data-in'],
      ['processor', 'data-out'],
      ['aggregator', 'data-in'],
    ] as const;
    let shown: Record<string, number | null> = {};
    const within = (v: number | null) => v !== null && Math.abs(v - RATE) <= RATE * 0.1;
    try {
      // Steady state: the rates the page shows (averaged over 3 s) settle on the posted load.
      await eventually(
        async () => {
          shown = {};
          for (const [stage, name] of fields) {
            const text = await attr(`[data-service="${stage}"]`, name);
            shown[`${stage} ${name}`] = text ? Number(text) : null;
          }
          return Object.values(shown).every(within);
        },
        30_000,
        500,
        () => shown,
      );
      await screenshot(page, 'overview');
    } finally {
      stop = true;
      await load;
    }
    expect(Object.values(shown).every(within)).toBe(true);
    expect(await page.locator('[data-service="ingest"] [data-field="in"]').textContent()).toMatch(/^\d+(\.\d)? req\/s$/);
  }, 60_000);

  it('stores a rule added on the routes page only after checking it, and the routers route the next events by it', async () => {
    await page.goto(`${consoleService.url}/#/routes`);
    await page.locator('[data-route="handler.orders"]').waitFor();
    await page.fill('#rule-name', 'imports');
    // A rule the router would ignore is refused before anything is stored.
    await page.fill('#rule-json', '{"match": "order.imported", "to": []}');
    await page.locator('#rule-check.problem').filter({ hasText: 'to must list handler names' }).waitFor();
    expect(await page.locator('#rule-save').isDisabled()).toBe(true);
    await page.fill('#rule-json', '{"match": "order.imported", "to": ["orders"]}');
    await page.locator('#rule-check:not(.problem)').filter({ hasText: 'The router accepts this rule' }).waitFor();
    await page.click('#rule-save');
    await page.locator('[data-stored="rule.imports"]').waitFor();
    await page.locator('[data-route="rule.imports"]').waitFor();
    const stored = await (await new Kvm(nc).open(Buckets.routes)).get(`${RouteKeyPrefix.rule}imports`);
    expect(stored?.json()).toEqual({ match: 'order.imported', to: ['orders'] });
    await screenshot(page, 'routes');

    // The router applies the change as its KV watch delivers it: probe until one import is counted.
    let probes = 0;
    await eventually(
      async () => {
        await postEvents(mesh.ingest.url, [event('order.imported', `probe-${probes++}`, 1)], 'single');
        await new Promise((r) => setTimeout(r, 500));
        return (await totalsOf(mesh.aggregator.url, `probe-${probes - 1}`)).count === 1;
      },
      20_000,
      0,
    );
    const next = Array.from({ length: 10 }, (_, i) => event('order.imported', 'after-rule', i + 1));
    await postEvents(mesh.ingest.url, next, 'batch');
    await eventually(async () => (await totalsOf(mesh.aggregator.url, 'after-rule')).count >= 10, 20_000);
    expect(await totalsOf(mesh.aggregator.url, 'after-rule')).toEqual({ count: 10, sum: 55 });

    // Edited on the page, then deleted after a confirmation.
    await page.locator('[data-route="rule.imports"] button', { hasText: 'Edit' }).click();
    expect(await page.inputValue('#rule-name')).toBe('imports');
    await page.fill('#rule-json', '{"match": "order.imported", "to": ["orders"], "priority": 5}');
    await page.locator('#rule-check').filter({ hasText: 'The router accepts this rule' }).waitFor();
    await page.click('#rule-save');
    await page.locator('[data-route="rule.imports"]').filter({ hasText: '"priority":5' }).waitFor();
    expect((await (await new Kvm(nc).open(Buckets.routes)).get(`${RouteKeyPrefix.rule}imports`))?.json()).toMatchObject({ priority: 5 });
    await page.locator('[data-route="rule.imports"] button', { hasText: 'Delete' }).click();
    await page.click('dialog [data-confirm="yes"]');
    await page.locator('[data-route="rule.imports"]').waitFor({ state: 'detached' });
    const removed = await (await new Kvm(nc).open(Buckets.routes)).get(`${RouteKeyPrefix.rule}imports`);
    expect(removed === null || removed.operation !== 'PUT').toBe(true);
  }, 60_000);

  it('redrives a dead letter chosen on the page after a confirmation, and its event is counted in its totals', async () => {
    // Nobody takes order.backfill: the router dead-letters it.
    const lost = event('order.backfill', 'backfilled', 7);
    await postEvents(mesh.ingest.url, [lost], 'single');
    let seq = 0;
    await eventually(async () => {
      seq = (await deadLetters(jsm)).find((d) => d.text.includes(lost.id))?.seq ?? 0;
      return seq > 0;
    }, 20_000);
    await page.goto(`${consoleService.url}/#/overview`);
    await eventually(async () => Number(await attr('[data-service="router"]', 'data-dead-letters')) >= 1, 10_000);

    // Give it a route (not through the page: this test is about the redrive), and wait until the router follows it.
    await (await new Kvm(nc).open(Buckets.routes)).put(`${RouteKeyPrefix.rule}backfill`, JSON.stringify({ match: 'order.backfill', to: ['orders'] }));
    let probes = 0;
    await eventually(
      async () => {
        await postEvents(mesh.ingest.url, [event('order.backfill', `bprobe-${probes++}`, 1)], 'single');
        await new Promise((r) => setTimeout(r, 500));
        return (await totalsOf(mesh.aggregator.url, `bprobe-${probes - 1}`)).count === 1;
      },
      20_000,
      0,
    );
    expect(await totalsOf(mesh.aggregator.url, 'backfilled')).toEqual({ count: 0, sum: 0 });

    await page.goto(`${consoleService.url}/#/dead-letters?stage=router`);
    const row = page.locator(`tr[data-seq="${seq}"]`);
    await row.waitFor();
    await row.locator('button').click();
    await page.locator('#dead-letter-detail').filter({ hasText: 'Mesh-Original-Subject' }).waitFor();
    expect(await page.locator('#dead-letter-detail pre').textContent()).toContain(lost.id);
    await screenshot(page, 'dead-letters');
    await row.locator('input[type="checkbox"]').check();
    await page.click('#redrive-selected');
    await page.locator('dialog[open]').waitFor();
    await page.click('dialog [data-confirm="yes"]');
    await page.locator('#redrive-outcome [data-redriven="1"][data-refused="0"]').waitFor();

    await eventually(async () => (await totalsOf(mesh.aggregator.url, 'backfilled')).count === 1, 20_000);
    expect(await totalsOf(mesh.aggregator.url, 'backfilled')).toEqual({ count: 1, sum: 7 });
    expect((await deadLetters(jsm)).some((d) => d.seq === seq)).toBe(false);
  }, 90_000);

  it('redrives every dead letter matching a filter with one confirmation', async () => {
    const lost = [event('order.refill', 'refill-a', 2), event('order.refill', 'refill-b', 3)];
    await postEvents(mesh.ingest.url, lost, 'batch');
    await eventually(async () => {
      const texts = (await deadLetters(jsm)).map((d) => d.text);
      return lost.every((e) => texts.some((t) => t.includes(e.id)));
    }, 20_000);
    await (await new Kvm(nc).open(Buckets.routes)).put(`${RouteKeyPrefix.rule}refill`, JSON.stringify({ match: 'order.refill', to: ['orders'] }));
    let probes = 0;
    await eventually(
      async () => {
        await postEvents(mesh.ingest.url, [event('order.refill', `rprobe-${probes++}`, 1)], 'single');
        await new Promise((r) => setTimeout(r, 500));
        return (await totalsOf(mesh.aggregator.url, `rprobe-${probes - 1}`)).count === 1;
      },
      20_000,
      0,
    );
    const waiting = (await deadLetters(jsm)).filter((d) => d.headers[Headers.stage] === 'router').length;
    expect(waiting).toBeGreaterThanOrEqual(2);

    await page.goto(`${consoleService.url}/#/dead-letters?stage=router`);
    await page.locator('tr[data-seq]').first().waitFor();
    await page.click('#redrive-all');
    expect(await page.locator('dialog[open]').textContent()).toContain('matching stage router');
    await page.click('dialog [data-confirm="yes"]');
    await page.locator(`#redrive-outcome [data-redriven="${waiting}"][data-refused="0"]`).waitFor();
    await page.locator('#dead-letters-list, main').filter({ hasText: 'No dead letters match' }).first().waitFor();

    await eventually(async () => (await totalsOf(mesh.aggregator.url, 'refill-b')).count === 1, 20_000);
    expect(await totalsFor(mesh.aggregator.url, ['refill-a', 'refill-b'])).toEqual({ 'refill-a': { count: 1, sum: 2 }, 'refill-b': { count: 1, sum: 3 } });
    expect((await deadLetters(jsm)).filter((d) => d.headers[Headers.stage] === 'router')).toEqual([]);
  }, 90_000);

  it('shows a SIGKILLed processor down within the lease TTL and its partitions moving to the survivor, then a new one joining', async () => {
    await page.goto(`${consoleService.url}/#/partitions`);
    const owners = async () => page.$$eval('[data-stage-table="processor"] tr[data-partition]', (rows) => rows.map((r) => r.getAttribute('data-owner') ?? ''));
    // Both processors own some partitions.
    await eventually(async () => new Set(await owners()).size === 2, 30_000);
    const before = await owners();
    expect(before.filter((o) => o === mesh.processor.output().match(/"instance":"([^"]+)"/)?.[1]).length).toBeGreaterThan(0);
    const victimId = /"instance":"([^"]+)"/.exec(second.output())![1];
    const survivorId = /"instance":"([^"]+)"/.exec(mesh.processor.output())![1];
    const moved = before.map((o, p) => (o === victimId ? p : -1)).filter((p) => p >= 0);
    expect(moved.length).toBeGreaterThan(0);

    await page.goto(`${consoleService.url}/#/overview`);
    await page.locator(`[data-instance="${victimId}"][data-status="up"]`).waitFor();
    const killedAt = Date.now();
    await second.kill();
    await page.locator(`[data-instance="${victimId}"][data-status="down"]`).waitFor({ timeout: 15_000 });
    expect(Date.now() - killedAt).toBeLessThanOrEqual(LEASE_TTL_MS);
    await screenshot(page, 'overview-processor-down');

    await page.goto(`${consoleService.url}/#/partitions`);
    await eventually(async () => (await owners()).every((o) => o === survivorId), 30_000, 250, owners);
    for (const p of moved) await page.locator(`[data-move="processor/${p}"]`).first().waitFor();
    expect(await page.locator('ul[aria-label="Ownership moves"] li').allTextContents()).toEqual(
      expect.arrayContaining(moved.map((p) => expect.stringContaining(`processor p${p}: ${victimId} → ${survivorId}`))),
    );
    await screenshot(page, 'partitions');

    // A new instance appears on the overview when it starts, and takes partitions from the survivor.
    third = await startService('processor', { NATS_URL: server.url, MESH_LEASE_TTL: `${LEASE_TTL_MS}ms` });
    const joinedId = /"instance":"([^"]+)"/.exec(third.output())![1];
    await page.goto(`${consoleService.url}/#/overview`);
    await page.locator(`[data-instance="${joinedId}"][data-status="up"]`).waitFor({ timeout: 15_000 });
    await page.goto(`${consoleService.url}/#/partitions`);
    await eventually(async () => (await owners()).includes(joinedId), 30_000, 250, owners);
    const taken = (await owners()).map((o, p) => (o === joinedId ? p : -1)).filter((p) => p >= 0);
    await page
      .locator(`[data-move="processor/${taken[0]}"]`)
      .filter({ hasText: `${survivorId} → ${joinedId}` })
      .first()
      .waitFor();
  }, 90_000);

  it('watches an aggregation key live and tails a stage, paused and resumed by the user', async () => {
    await page.goto(`${consoleService.url}/#/aggregates`);
    await page.fill('#agg-key', 'watched');
    await page.click('form[aria-label="Watch an aggregation key"] button[type="submit"]');
    await page.locator('#agg-result').filter({ hasText: 'No windows for totals/watched yet' }).waitFor();
    await postEvents(mesh.ingest.url, [event('order.created', 'watched', 4)], 'single');
    await page.locator('#agg-result svg.chart').waitFor({ timeout: 20_000 });
    await postEvents(mesh.ingest.url, [event('order.created', 'watched', 5)], 'single');
    await page.locator('#agg-result td').filter({ hasText: /^9$/ }).waitFor({ timeout: 20_000 });
    await screenshot(page, 'aggregates');

    await page.goto(`${consoleService.url}/#/events`);
    await page.selectOption('#tail-stage', 'router');
    await page.fill('#tail-filter', 'order.*');
    await page.click('#tail-toggle');
    await page.locator('#tail-state').filter({ hasText: 'Waiting for events' }).waitFor();
    const tailed = event('order.created', 'tailed', 1);
    await postEvents(mesh.ingest.url, [tailed], 'single');
    await page.locator('#tail-log div').filter({ hasText: tailed.id }).waitFor({ timeout: 20_000 });
    await screenshot(page, 'events');
    // Paused: nothing new is shown.
    await page.click('#tail-toggle');
    expect(await page.locator('#tail-toggle').textContent()).toBe('Resume');
    const whilePaused = event('order.created', 'tailed', 1);
    await postEvents(mesh.ingest.url, [whilePaused], 'single');
    await eventually(async () => (await totalsOf(mesh.aggregator.url, 'tailed')).count === 2, 20_000);
    expect(await page.locator('#tail-log div').filter({ hasText: whilePaused.id }).count()).toBe(0);
    // Resumed: new events show again.
    await page.click('#tail-toggle');
    await page.locator('#tail-state').filter({ hasText: 'Waiting for events' }).waitFor();
    const afterResume = event('order.created', 'tailed', 1);
    await postEvents(mesh.ingest.url, [afterResume], 'single');
    await page.locator('#tail-log div').filter({ hasText: afterResume.id }).waitFor({ timeout: 20_000 });
  }, 90_000);
});
