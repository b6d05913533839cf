/**
 * The benchmark harness works: a few-second run starts its own nats-server
 * and the services, checks exact totals, and writes its results. Speed is
 * not checked here; `npm run bench` measures it.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RepoRoot } from '@mesh/testing';

/** Run the built bench to its end; its exit code and everything it printed. */
async function runBench(args: string[]): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, [join(RepoRoot, 'bench', 'dist', 'main.js'), ...args], {
    env: { PATH: process.env.PATH ?? '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr.on('data', (c: Buffer) => (output += c.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { code, output };
}

describe('npm run bench -- --smoke', () => {
  it('runs the raw baseline and the mesh, finds every total exact and writes results', async () => {
    const out = mkdtempSync(join(tmpdir(), 'bench-smoke-'));
    try {
      const { code, output } = await runBench(['--smoke', '--out', out]);
      expect({ code, tail: output.slice(-1500) }).toEqual({ code: 0, tail: expect.stringContaining('Totals exact for every key after every step.') });
      const files = readdirSync(out);
      const json = files.find((f) => f.endsWith('.json'));
      expect(files.some((f) => f.endsWith('.svg'))).toBe(true);
      const results = JSON.parse(readFileSync(join(out, json!), 'utf8')) as {
        baseline: Record<'perEvent' | 'batched' | 'batchedAfter', { eventsPerSec: number } | undefined>;
        ratios: Record<string, number | undefined>;
        mesh: { saturation?: { eventsPerSec: number }; idle?: { partitions: number; msPerS: Record<string, number>; totalPctOfCore: number }[] };
      };
      // Both batched baseline runs that bracket the mesh, and the figures derived from them.
      for (const run of ['perEvent', 'batched', 'batchedAfter'] as const) expect(results.baseline[run]?.eventsPerSec).toBeGreaterThan(0);
      expect(results.mesh.saturation?.eventsPerSec).toBeGreaterThan(0);
      // The idle measurement: every process of the mesh, settled with no load, at the default partition count.
      expect(results.mesh.idle).toEqual([
        expect.objectContaining({
          partitions: 16,
          msPerS: expect.objectContaining({ 'nats-server': expect.any(Number), ingest: expect.any(Number), aggregator: expect.any(Number) }),
        }),
      ]);
      expect(results.mesh.idle![0].totalPctOfCore).toBeGreaterThanOrEqual(0);
      expect(results.ratios.batchedBaselineDrift).toBeGreaterThan(0);
      expect(results.ratios.saturationVsBatchedBaseline).toBeCloseTo(
        (2 * results.mesh.saturation!.eventsPerSec) / (results.baseline.batched!.eventsPerSec + results.baseline.batchedAfter!.eventsPerSec),
        3,
      );
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 120_000);

  it('--secure runs the services as their own NATS users over TLS, and finds every total exact', async () => {
    const out = mkdtempSync(join(tmpdir(), 'bench-smoke-secure-'));
    try {
      const { code, output } = await runBench(['--smoke', '--secure', '--skip-baseline', '--out', out]);
      expect({ code, tail: output.slice(-1500) }).toEqual({ code: 0, tail: expect.stringContaining('Totals exact for every key after every step.') });
      expect(output).toMatch(/nats-server pid \d+ at tls:\/\/127\.0\.0\.1:\d+/);
      const json = readdirSync(out).find((f) => f.endsWith('.json'));
      expect((JSON.parse(readFileSync(join(out, json!), 'utf8')) as { options: { secure: boolean } }).options.secure).toBe(true);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 120_000);
});
