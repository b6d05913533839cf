/**
 * The console's access and error states in a real browser: with API keys
 * on it asks for a key with the admin scope and refuses every other (the
 * page shows nothing and changes nothing without one), it never hands the
 * browser the NATS credentials it runs with, it fits a phone's screen, it
 * is usable by keyboard, and it says plainly when NATS is down.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { startNatsServer, startService, type NatsServer, type ServiceProcess } from '@mesh/testing';
import { bearer, createKey } from './support/api-keys';
import { consolePage, launchChromium, screenshot } from './support/console-browser';

const NATS_PASSWORD = 'nats-secret-of-the-console';

describe('the console with API keys on', () => {
  let dir: string;
  let server: NatsServer;
  let consoleService: ServiceProcess;
  let browser: Browser;
  let page: Page;
  let errors: string[];
  let elsewhere: string[];
  let adminKey: string;
  let queryKey: string;
  const bodies: string[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mesh-console-access-'));
    const keys = join(dir, 'keys.json');
    adminKey = await createKey(keys, 'operator', 'admin');
    queryKey = await createKey(keys, 'reader', 'query');
    server = await startNatsServer({ args: ['--user', 'console', '--pass', NATS_PASSWORD] });
    consoleService = await startService('console', { NATS_URL: server.url, NATS_USER: 'console', NATS_PASSWORD, MESH_API_KEYS_FILE: keys });
    browser = await launchChromium();
    ({ page, errors, elsewhere } = await consolePage(browser, consoleService.url));
    // Everything the console sends the browser, to look for the NATS password in it.
    page.on(
      'response',
      (r) =>
        void r.text().then(
          (t) => bodies.push(t),
          () => undefined,
        ),
    );
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await consoleService?.stop();
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  it('answers its API only to a key with the admin scope', async () => {
    const url = consoleService.url;
    expect(await (await fetch(`${url}/api/session`)).json()).toMatchObject({ apiKeys: true });
    expect((await fetch(`${url}/api/picture`)).status).toBe(401);
    expect((await fetch(`${url}/api/picture`, { headers: bearer(queryKey) })).status).toBe(403);
    const put = await fetch(`${url}/api/routes/sneaky`, { method: 'PUT', headers: bearer(queryKey), body: '{"match":"x","to":["y"]}' });
    expect(put.status).toBe(403);
    const routes = (await (await fetch(`${url}/api/routes`, { headers: bearer(adminKey) })).json()) as { routes: { name: string }[] };
    expect(routes.routes.map((r) => r.name)).not.toContain('sneaky');
    expect((await fetch(`${url}/api/dead-letters/redrive`, { method: 'POST', body: '{"all":true}' })).status).toBe(401);

    // With the admin key: a sequence that is not there is reported, not fatal; a malformed request is refused and says why.
    const redrive = (body: string) =>
      fetch(`${url}/api/dead-letters/redrive`, { method: 'POST', headers: { ...bearer(adminKey), 'content-type': 'application/json' }, body });
    const missing = await redrive('{"seqs":[999]}');
    expect(missing.status).toBe(200);
    expect(await missing.json()).toEqual({ redriven: [], refused: [{ seq: 999, problem: expect.stringContaining('no dead letter with sequence 999') }] });
    const malformed = await redrive('{"seqs":["x"]}');
    expect(malformed.status).toBe(400);
    expect(((await malformed.json()) as { error: string }).error).toBe(
      'seqs must be a list of 1 to 10000 dead letter sequences (whole numbers above 0); got ["x"]',
    );
    const badStage = await fetch(`${url}/api/dead-letters?stage=sink`, { headers: bearer(adminKey) });
    expect([badStage.status, ((await badStage.json()) as { error: string }).error]).toEqual([
      400,
      'stage = "sink" is not a stage that dead-letters; accepted: router, processor, aggregator or ingest',
    ]);
  });

  it('asks for a key, refuses one without the admin scope, and shows the mesh with an admin key', async () => {
    await page.goto(consoleService.url);
    await page.locator('#api-key').waitFor();
    expect(await page.locator('[data-service]').count()).toBe(0);
    await page.fill('#api-key', queryKey);
    await page.press('#api-key', 'Enter');
    await page.locator('#banner').filter({ hasText: 'That key is refused' }).waitFor();
    expect(await page.locator('#api-key').isVisible()).toBe(true);
    await screenshot(page, 'access-key-refused');

    await page.fill('#api-key', adminKey);
    await page.press('#api-key', 'Enter');
    await page.locator('[data-service="router"]').waitFor();
    // No service runs: the page says so rather than showing empty boxes.
    await page.locator('.empty').filter({ hasText: 'No service answers service discovery yet' }).waitFor();
    await screenshot(page, 'overview-empty');
  });

  it('never sends the browser the NATS credentials it runs with', async () => {
    for (const path of ['/#/partitions', '/#/dead-letters', '/#/routes']) {
      await page.goto(`${consoleService.url}${path}`);
      await page.locator('main h2').waitFor();
    }
    await page.waitForTimeout(1_500);
    expect(bodies.length).toBeGreaterThan(5);
    expect(bodies.filter((b) => b.includes(NATS_PASSWORD))).toEqual([]);
    expect(await page.content()).not.toContain(NATS_PASSWORD);
  });

  it('fits a phone screen and is usable by keyboard', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${consoleService.url}/#/overview`);
    await page.locator('[data-service="router"]').waitFor();
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await screenshot(page, 'overview-phone');
    await page.setViewportSize({ width: 1280, height: 800 });

    // Tab order: the skip link first, then the pages; Enter follows a link.
    await page.goto(`${consoleService.url}/#/overview`);
    await page.locator('[data-service="router"]').waitFor();
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Skip to content');
    for (let i = 0; i < 4; i++) await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Routes');
    await page.keyboard.press('Enter');
    await page.locator('main h2').filter({ hasText: 'Routes' }).waitFor();
  });

  it('says NATS is down when it goes away', async () => {
    await page.goto(`${consoleService.url}/#/overview`);
    await page.locator('[data-service="router"]').waitFor();
    await server.stop();
    await page.locator('#banner.error').filter({ hasText: 'NATS is down' }).waitFor({ timeout: 20_000 });
    await page.locator('.empty.problem').filter({ hasText: 'NATS is down' }).waitFor();
    await screenshot(page, 'overview-nats-down');
  });

  afterEach(() => {
    expect(errors).toEqual([]);
    expect(elsewhere).toEqual([]);
  });
});
