/**
 * Debian's Chromium driven by playwright-core, for the console's browser
 * tests: headless, no sandbox (tests run as root in CI), no background
 * networking (the page must need nothing beyond the console). Screenshots
 * go to test-artifacts/console/ (gitignored), kept after the run.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { RepoRoot } from '@mesh/testing';

export const ArtifactsDir = join(RepoRoot, 'test-artifacts', 'console');

/** Where `which chromium` finds it; a clear error when it is not installed. */
export function chromiumPath(): string {
  try {
    return execFileSync('which', ['chromium'], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error("chromium is not installed: apt-get install -y chromium (Debian's package; .ci/run installs it)");
  }
}

export async function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath(),
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}

/**
 * A page at 1280x800 that fails the test on any script error, and records
 * every request that leaves the console (there must be none).
 */
export async function consolePage(
  browser: Browser,
  consoleUrl: string,
  viewport = { width: 1280, height: 800 },
): Promise<{ page: Page; errors: string[]; elsewhere: string[] }> {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  const errors: string[] = [];
  const elsewhere: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('request', (r) => {
    if (!r.url().startsWith(consoleUrl) && !r.url().startsWith('data:')) elsewhere.push(r.url());
  });
  return { page, errors, elsewhere };
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ArtifactsDir, { recursive: true });
  const path = join(ArtifactsDir, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}
