/**
 * What the mesh costs with nothing to do: the CPU of each process over a
 * window with the services started and settled and no load, as ms of CPU
 * per second and, for the mesh's processes together (nats-server and the
 * services; not the bench), as a percentage of one core.
 *
 * Settled: the services were ready (every partition taken is consumed,
 * /readyz) and then ran `settleMs` more, so start-up work (provisioning,
 * the first ownership rounds, compiling) is not counted.
 */
import { performance } from 'node:perf_hooks';
import { cpuDelta, cpuSeconds, readCpu, type CpuTimes } from './proc-stats';

export interface IdleResult {
  partitions: number;
  settleS: number;
  windowS: number;
  /** CPU ms (user + sys) per second of the window, by process. */
  msPerS: Record<string, number>;
  /** Every process but the bench, together: % of one core. */
  totalPctOfCore: number;
}

/** How long the mesh runs after it is ready before the window opens. */
export const IdleSettleMs = 3_000;

const NotMesh = new Set(['bench']);

export async function measureIdle(
  pids: Record<string, number>,
  partitions: number,
  o: { settleMs: number; windowMs: number },
  say: (line: string) => void,
): Promise<IdleResult> {
  say(`idle at P=${partitions}: settling ${o.settleMs / 1000} s, then measuring ${o.windowMs / 1000} s with no load`);
  await new Promise((r) => setTimeout(r, o.settleMs));
  const before: Record<string, CpuTimes | undefined> = {};
  for (const [name, pid] of Object.entries(pids)) before[name] = readCpu(pid);
  const startedAt = performance.now();
  await new Promise((r) => setTimeout(r, o.windowMs));
  const seconds = (performance.now() - startedAt) / 1000;
  const msPerS: Record<string, number> = {};
  let meshMs = 0;
  for (const [name, pid] of Object.entries(pids)) {
    const ms = (cpuSeconds(cpuDelta(before[name], readCpu(pid))) * 1000) / seconds;
    msPerS[name] = Math.round(ms * 10) / 10;
    if (!NotMesh.has(name)) meshMs += ms;
  }
  const result: IdleResult = {
    partitions,
    settleS: o.settleMs / 1000,
    windowS: Math.round(seconds * 100) / 100,
    msPerS,
    totalPctOfCore: Math.round((meshMs / 1000) * 100 * 100) / 100,
  };
  say(`  ${describeIdle(result)}`);
  return result;
}

/** `P=16: 1.8% of one core (nats-server 8.0 ms/s, ingest 1.0 ms/s, ...)` */
export function describeIdle(r: IdleResult): string {
  const parts = Object.entries(r.msPerS)
    .filter(([name]) => !NotMesh.has(name))
    .map(([name, ms]) => `${name} ${ms.toFixed(1)} ms/s`);
  return `P=${r.partitions}: ${r.totalPctOfCore.toFixed(2)}% of one core (${parts.join(', ')})`;
}
