/**
 * The mesh side of the bench: start the four services as processes (each
 * registered for clean-up the moment it has a pid) and run steps against
 * them. A step offers a load to ingest for a while, then waits until every
 * key's totals are exact, and records throughput, latency and the CPU each
 * process used.
 */
import { performance } from 'node:perf_hooks';
import type { KV } from '@nats-io/kv';
import { startService, type ServiceName, type ServiceProcess } from '@mesh/testing';
import { ProbeWatch, verifyTotals, waitForExactTotals } from './aggregate-watch';
import type { IngestClient } from './ingest-client';
import { offerLoad, type OfferedLoad } from './offered-load';
import type { OwnedProcesses } from './owned-processes';
import { summarise } from './percentiles';
import { cpuDelta, readCpu, type CpuTimes } from './proc-stats';
import type { StepCpu, StepResult } from './results';
import type { Workload } from './workload';

export type Services = Record<ServiceName, ServiceProcess>;

/**
 * Like startMesh of @mesh/testing (the processor first: it declares the
 * handlers the router routes to), but each process is registered before
 * it is awaited, so one that fails to become ready is still stopped.
 */
export async function startServices(owned: OwnedProcesses, envFor: (name: ServiceName) => Record<string, string>): Promise<Services> {
  const start = async (name: ServiceName) => {
    const p = await startService(name, envFor(name), { waitReady: false });
    owned.add({ name, pid: p.pid, tier: 0, stop: () => p.stop(), kill: () => p.kill() });
    await p.waitReady(60_000);
    return p;
  };
  const processor = await start('processor');
  const [ingest, router, aggregator] = await Promise.all([start('ingest'), start('router'), start('aggregator')]);
  return { ingest, router, processor, aggregator };
}

export interface StepContext {
  client: IngestClient;
  workload: Workload;
  probes: ProbeWatch;
  kv: KV;
  aggregatorUrl: string;
  /** Processes whose CPU is measured per step, by name. */
  pids: Record<string, number>;
  drainTimeoutMs: number;
  say(line: string): void;
}

function readAll(pids: Record<string, number>): Record<string, CpuTimes | undefined> {
  return Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, readCpu(pid)]));
}

export async function runStep(ctx: StepContext, name: string, kind: StepResult['kind'], load: OfferedLoad): Promise<StepResult> {
  const cpuBefore = readAll(ctx.pids);
  const retriesBefore = ctx.client.retries;
  const offered = Number.isFinite(load.rate) ? load.rate : 'max';
  ctx.say(
    `step ${name}: offering ${offered === 'max' ? 'as much as' : offered + ' events/s with'} ${load.concurrency} requests in flight, ${load.batch} event(s) each, for ${load.durationMs / 1000} s`,
  );

  const posting = await offerLoad(ctx.client, ctx.workload, load, (probes, at) => ctx.probes.noteSent(probes, at, name));
  const postingS = (posting.lastAcceptedAt - posting.startedAt) / 1000;
  ctx.say(`  posted ${posting.events} events in ${postingS.toFixed(1)} s; waiting for exact totals of ${ctx.workload.keys.length} keys`);

  const exact = await waitForExactTotals(ctx.kv, ctx.workload.expectedTotals(), ctx.drainTimeoutMs);
  const cpuAfter = readAll(ctx.pids);
  // The probe watchers may see the last updates a moment after the wide watch did.
  const until = performance.now() + 2_000;
  while (exact.doneAt !== undefined && ctx.probes.unseen() > 0 && performance.now() < until) await new Promise((r) => setTimeout(r, 20));
  const mismatches = await verifyTotals(ctx.aggregatorUrl, ctx.workload.expectedTotals());

  const cpu: Record<string, StepCpu> = {};
  for (const n of Object.keys(ctx.pids)) {
    const d = cpuDelta(cpuBefore[n], cpuAfter[n]);
    cpu[n] = { userS: round(d.userS, 2), sysS: round(d.sysS, 2), msPer1kEvents: round(((d.userS + d.sysS) * 1000) / (posting.events / 1000), 2) };
  }
  const e2eSeconds = exact.doneAt !== undefined ? (exact.doneAt - posting.startedAt) / 1000 : undefined;
  const result: StepResult = {
    name,
    kind,
    offered,
    batch: load.batch,
    concurrency: load.concurrency,
    durationMs: load.durationMs,
    requests: posting.requests,
    events: posting.events,
    retries: ctx.client.retries - retriesBefore,
    postedEventsPerSec: round(posting.events / postingS, 1),
    maxLagMs: round(posting.maxLagMs, 1),
    e2eSeconds: e2eSeconds !== undefined ? round(e2eSeconds, 3) : undefined,
    e2eEventsPerSec: e2eSeconds !== undefined ? round(posting.events / e2eSeconds, 1) : undefined,
    drainSeconds: exact.doneAt !== undefined ? round((exact.doneAt - posting.lastAcceptedAt) / 1000, 3) : undefined,
    exact: exact.doneAt !== undefined && mismatches.length === 0,
    keptUp: e2eSeconds !== undefined && (offered === 'max' || posting.events / e2eSeconds >= 0.95 * offered),
    mismatches: mismatches.slice(0, 20),
    latencyMs: summarise(ctx.probes.samplesOf(name)),
    observedLatencyMs: summarise(ctx.probes.observedOf(name)),
    unseenProbes: ctx.probes.unseen(),
    acceptMs: summarise(posting.acceptMs),
    cpu,
  };
  if (exact.doneAt === undefined) {
    ctx.say(
      `  totals of ${exact.outstanding.length} key(s) were still not exact after ${ctx.drainTimeoutMs / 1000} s (${exact.outstanding.slice(0, 5).join(', ')}…)`,
    );
  }
  if (mismatches.length > 0) {
    const m = mismatches[0];
    ctx.say(
      `  ${mismatches.length} key(s) have wrong totals in GET /v1/aggregates/totals/<key>, e.g. ${m.key}: expected ${JSON.stringify(m.expected)}, got ${JSON.stringify(m.got)}`,
    );
  }
  const l = result.latencyMs;
  ctx.say(
    `  e2e ${result.e2eEventsPerSec ?? '-'} events/s (drain ${result.drainSeconds ?? '-'} s)` +
      (l ? `; latency p50 ${l.p50} ms, p95 ${l.p95} ms, p99 ${l.p99} ms over ${l.samples} events` : '') +
      `; totals ${result.exact ? 'exact' : 'NOT EXACT'}`,
  );
  return result;
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}
