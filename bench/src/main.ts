/**
 * `npm run bench`: throughput and latency of the mesh, next to a raw
 * JetStream baseline, on a fresh local nats-server.
 *
 * 1. Start nats-server on a free port with a temporary store (never the one
 *    on 4222).
 * 2. Raw baseline: the same four durable hops with the bare client, one
 *    event per message and batched.
 * 3. Start the four services as processes, measure their CPU while idle
 *    (settled, no load), warm them up, then run the latency step (a fixed
 *    offered load) and the load steps (each offered load in turn), each
 *    ending when every key's totals are exact.
 * 4. Read CPU and peak RSS of every process from /proc, stop everything by
 *    pid, write bench/results/<date>.json and .svg and print a table.
 *
 * `--idle` runs only the idle measurement, at each of `--idle-partitions`.
 *
 * Exits 1 when any key's totals are not exact or the bench failed, 2 on a
 * bad option.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/nats-core';
import { Kvm } from '@nats-io/kv';
import { Buckets } from '@mesh/contracts';
import { credentialOptions, RepoRoot, ServiceNodeOptions, startNatsServer, startSecureNats, type ServiceName } from '@mesh/testing';
import { ProbeWatch } from './aggregate-watch';
import { renderChart } from './chart';
import { summariseProfile } from './cpu-profile';
import { IdleSettleMs, measureIdle } from './idle';
import { IngestClient } from './ingest-client';
import { runStep, startServices, type Services, type StepContext } from './mesh-steps';
import { loadLabel, OptionError, parseOptions, usage, type BenchOptions } from './options';
import { OwnedProcesses } from './owned-processes';
import { readCpu, readPeakRss } from './proc-stats';
import { runBaseline } from './raw-baseline';
import { batchedReference, renderTable, type BenchResults, type StepResult } from './results';
import { Workload } from './workload';

const ServiceNames: ServiceName[] = ['ingest', 'router', 'processor', 'aggregator'];

function say(line: string): void {
  process.stdout.write(`[bench] ${line}\n`);
}

/** The commit measured, and whether the work tree had changes on top of it. */
function gitState(): { commit?: string; uncommittedChanges?: number } {
  try {
    const git = (...args: string[]) => execFileSync('git', ['-C', RepoRoot, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return { commit: git('rev-parse', 'HEAD'), uncommittedChanges: git('status', '--porcelain').split('\n').filter(Boolean).length };
  } catch {
    return {};
  }
}

function optionsForJson(o: BenchOptions): Record<string, unknown> {
  return { ...o, loads: o.loads.map((l) => (Number.isFinite(l) ? l : 'max')) };
}

/** MESH_* and OTEL_* variables of the bench's environment go to the services (tuning runs, tracing cost); nothing else of it does. */
function meshEnv(): Record<string, string> {
  return Object.fromEntries(
    Object.entries(process.env).filter((e): e is [string, string] => (e[0].startsWith('MESH_') || e[0].startsWith('OTEL_')) && e[1] !== undefined),
  );
}

/** The partition count the services run with: MESH_PARTITIONS of the bench's environment, else the services' default. */
function partitionCount(): number {
  return Number(process.env.MESH_PARTITIONS || 16);
}

/** A fresh nats-server (with --secure: the generated least-privilege config with TLS), registered for clean-up. */
async function startServer(o: BenchOptions, owned: OwnedProcesses, partitions: number) {
  const secure = o.secure ? await startSecureNats({ partitions }) : undefined;
  const server = secure?.server ?? (await startNatsServer());
  const adminAuth = secure?.env('admin') ?? {};
  const registered = owned.add({
    name: 'nats-server',
    pid: server.pid,
    tier: 1,
    stop: () => (secure ? secure.stop() : server.stop()),
    kill: async () => {
      await server.kill();
      rmSync(server.storeDir, { recursive: true, force: true });
    },
    afterExitSync: () => {
      rmSync(server.storeDir, { recursive: true, force: true });
      if (secure) rmSync(secure.dir, { recursive: true, force: true });
    },
  });
  say(`nats-server pid ${server.pid} at ${server.url}, store ${server.storeDir}`);
  return { server, secure, adminAuth, registered };
}

/**
 * `--idle`: for each partition count, a fresh nats-server and the four
 * services with MESH_PARTITIONS set, the idle measurement, then everything
 * stopped before the next.
 */
async function runIdle(o: BenchOptions, owned: OwnedProcesses, results: BenchResults, outDir: string, started: { services?: Services }): Promise<void> {
  results.mesh.idle = [];
  for (const partitions of o.idlePartitions) {
    const { server, secure, registered } = await startServer(o, owned, partitions);
    const serviceEnv: Record<string, string> = { LOG_LEVEL: 'info', ...meshEnv(), MESH_PARTITIONS: String(partitions) };
    results.mesh.serviceEnv = serviceEnv;
    const services = await startServices(owned, (name) => ({
      NATS_URL: server.url,
      ...(secure ? { ...secure.env(name), MESH_PROVISION: 'false' } : {}),
      ...serviceEnv,
      ...nodeOptions(o, outDir, results.date, name),
    }));
    started.services = services;
    say(`services up: ${ServiceNames.map((n) => `${n} pid ${services[n].pid}`).join(', ')}`);
    const pids: Record<string, number> = { 'nats-server': server.pid };
    for (const n of ServiceNames) pids[n] = services[n].pid;
    results.mesh.idle.push(await measureIdle(pids, partitions, { settleMs: IdleSettleMs, windowMs: o.idleWindowMs }, say));
    const servicesOwned = owned.list().filter((p) => (ServiceNames as string[]).includes(p.name));
    await Promise.all(servicesOwned.map((p) => owned.stop(p)));
    await owned.stop(registered);
  }
}

async function run(o: BenchOptions, owned: OwnedProcesses, results: BenchResults, outDir: string, started: { services?: Services }): Promise<void> {
  const { server, secure, adminAuth } = await startServer(o, owned, partitionCount());
  let nc: NatsConnection | undefined;
  let probes: ProbeWatch | undefined;
  let client: IngestClient | undefined;
  try {
    nc = await connect({ servers: server.url, name: 'bench', ...credentialOptions(adminAuth) });
    results.environment.natsServer = nc.info?.version;

    const batchedBaseline = async () => {
      const b = await runBaseline(
        nc!,
        server.url,
        server.pid,
        owned,
        { label: `batched ×${o.baselineBatch}`, perMessage: o.baselineBatch, events: o.baselineBatchedEvents },
        o.eventBytes,
        say,
        adminAuth,
      );
      say(`  ${Math.round(b.eventsPerSec)} events/s`);
      return b;
    };
    if (!o.skipBaseline) {
      results.baseline.perEvent = await runBaseline(
        nc,
        server.url,
        server.pid,
        owned,
        { label: 'per event', perMessage: 1, events: o.baselineEvents },
        o.eventBytes,
        say,
        adminAuth,
      );
      say(`  ${Math.round(results.baseline.perEvent.eventsPerSec)} events/s`);
      results.baseline.batched = await batchedBaseline();
    }

    const date = results.date;
    const serviceEnv: Record<string, string> = { LOG_LEVEL: 'info', ...meshEnv() };
    results.mesh.serviceEnv = serviceEnv;
    const services = await startServices(owned, (name) => ({
      NATS_URL: server.url,
      ...(secure ? { ...secure.env(name), MESH_PROVISION: 'false' } : {}),
      ...serviceEnv,
      ...nodeOptions(o, outDir, date, name),
    }));
    started.services = services;
    say(`services up: ${ServiceNames.map((n) => `${n} pid ${services[n].pid}`).join(', ')}`);
    const pids: Record<string, number> = { 'nats-server': server.pid, bench: process.pid };
    for (const n of ServiceNames) pids[n] = services[n].pid;
    if (o.idleWindowMs > 0) {
      // Before any load: the services have done nothing yet but start.
      results.mesh.idle = [await measureIdle(pids, partitionCount(), { settleMs: o.smoke ? 500 : IdleSettleMs, windowMs: o.idleWindowMs }, say)];
    }

    const kv = await new Kvm(nc).open(Buckets.aggregates);
    const workload = new Workload(o.keys, o.probes, o.eventBytes);
    probes = await ProbeWatch.start(kv, workload.probeKeys);
    client = new IngestClient(services.ingest.url, Math.max(o.concurrency, o.latencyConcurrency));
    const ctx: StepContext = { client, workload, probes, kv, aggregatorUrl: services.aggregator.url, pids, drainTimeoutMs: o.drainTimeoutMs, say };

    // Warm-up: every key gets events and a result in KV, the services' code is compiled.
    const warm = (results.mesh.warmup = await runStep(ctx, 'warm-up', 'load', {
      rate: Number.POSITIVE_INFINITY,
      batch: o.batch,
      concurrency: o.concurrency,
      durationMs: o.smoke ? 500 : 2_000,
    }));
    results.errors.push(...stepErrors(warm));
    if (warm.exact && o.latencyRate > 0) {
      // The load warm-up sends 100-event requests; the latency step's single
      // events take other code paths and open more connections. Measured
      // cold, their first seconds (JIT, sockets) on a machine with little
      // headroom left a backlog that took seconds to drain, and that was the
      // step's p99. The services run for days; warm that path first.
      const latencyShape = { rate: o.latencyRate, batch: o.latencyBatch, concurrency: o.latencyConcurrency };
      results.mesh.latencyWarmup = await runStep(ctx, 'latency warm-up', 'latency', { ...latencyShape, durationMs: o.smoke ? 500 : 3_000 });
      results.errors.push(...stepErrors(results.mesh.latencyWarmup));
      results.mesh.latency = await runStep(ctx, `latency ${o.latencyRate}/s`, 'latency', { ...latencyShape, durationMs: o.latencyDurationMs });
      results.errors.push(...stepErrors(results.mesh.latency));
    }
    for (const rate of o.loads) {
      if (results.errors.length > 0) break;
      const step = await runStep(ctx, loadLabel(rate), 'load', { rate, batch: o.batch, concurrency: o.concurrency, durationMs: o.durationMs });
      results.mesh.steps.push(step);
      results.errors.push(...stepErrors(step));
    }

    for (const [name, pid] of Object.entries(pids)) {
      const cpu = readCpu(pid);
      results.mesh.processes[name] = {
        pid,
        cpuUserS: cpu?.userS ?? 0,
        cpuSysS: cpu?.sysS ?? 0,
        peakRssMiB: Math.round(((readPeakRss(pid) ?? 0) / 1048576) * 10) / 10,
      };
    }
    if (!o.skipBaseline && results.errors.length === 0) {
      // The machine's speed drifts: measure the batched baseline again, with
      // the services stopped, so the mesh is compared with what bracketed it.
      say('stopping the services for the second batched baseline');
      await Promise.all(
        owned
          .list()
          .filter((p) => (ServiceNames as string[]).includes(p.name))
          .map((p) => owned.stop(p)),
      );
      results.baseline.batchedAfter = await batchedBaseline();
    }
  } finally {
    probes?.stop();
    client?.close();
    await nc?.close().catch(() => undefined);
  }
}

/**
 * The services' logs go to a temporary directory (they are not results);
 * their warnings and errors are counted in the results, with the first few,
 * since a partition that stalls or moves shows there first.
 */
function keepLogs(results: BenchResults, services: Services): void {
  const dir = mkdtempSync(join(tmpdir(), `mesh-bench-logs-${results.date}-`));
  results.mesh.logs = { dir, services: {} };
  for (const name of ServiceNames) {
    const output = services[name].output();
    writeFileSync(join(dir, `${name}.log`), output);
    const summary = { warn: 0, error: 0, first: [] as string[] };
    for (const line of output.split('\n')) {
      const level = /"level":"(warn|error)"/.exec(line)?.[1] as 'warn' | 'error' | undefined;
      if (!level) continue;
      summary[level]++;
      if (summary.first.length < 5) summary.first.push(line.slice(0, 400));
    }
    results.mesh.logs.services[name] = summary;
  }
  say(`service logs in ${dir}`);
}

/**
 * NODE_OPTIONS (and the profile's file) for a service: the services' own
 * flags, then --service-node-options (a later flag wins), plus the profiler
 * preload with --cpu-prof.
 */
function nodeOptions(o: BenchOptions, outDir: string, date: string, name: ServiceName): Record<string, string> {
  const opts = [ServiceNodeOptions, o.serviceNodeOptions, o.cpuProf ? `--require ${join(__dirname, 'cpu-prof-preload.js')}` : ''].filter(Boolean).join(' ');
  return {
    NODE_OPTIONS: opts,
    ...(o.cpuProf ? { BENCH_CPU_PROF_FILE: profileFile(outDir, date, name) } : {}),
  };
}

function profileFile(outDir: string, date: string, service: ServiceName): string {
  return join(outDir, `${date}-${service}.cpuprofile`);
}

function stepErrors(s: StepResult): string[] {
  return s.exact
    ? []
    : [`step ${s.name}: totals not exact (${s.mismatches.length} key(s) wrong in GET, e.g. ${JSON.stringify(s.mismatches[0] ?? 'timed out')})`];
}

function finish(results: BenchResults, o: BenchOptions): void {
  const exactSteps = results.mesh.steps.filter((s) => s.exact && s.e2eEventsPerSec !== undefined);
  const best = exactSteps.sort((a, b) => b.e2eEventsPerSec! - a.e2eEventsPerSec!)[0];
  if (best) results.mesh.saturation = { step: best.name, eventsPerSec: best.e2eEventsPerSec! };
  const { batched, batchedAfter, perEvent } = results.baseline;
  const r = (a?: number, b?: number) => (a !== undefined && b ? Math.round((a / b) * 10_000) / 10_000 : undefined);
  results.ratios = {
    saturationVsBatchedBaseline: r(results.mesh.saturation?.eventsPerSec, batchedReference(results)),
    batchedBaselineDrift: r(batchedAfter?.eventsPerSec, batched?.eventsPerSec),
    saturationVsPerEventBaseline: r(results.mesh.saturation?.eventsPerSec, perEvent?.eventsPerSec),
    latencyStepVsPerEventBaseline: r(results.mesh.latency?.e2eEventsPerSec, perEvent?.eventsPerSec),
  };
  results.exact = results.errors.length === 0 && [results.mesh.latency, ...results.mesh.steps].every((s) => s === undefined || s.exact);
  if (o.idle) results.exact = results.errors.length === 0 && results.mesh.idle?.length === o.idlePartitions.length;
  else if (!o.smoke && results.mesh.steps.length === 0) results.exact = false;
}

function summariseProfiles(results: BenchResults, outDir: string): void {
  results.profiles = {};
  for (const name of ServiceNames) {
    const file = profileFile(outDir, results.date, name);
    if (!existsSync(file)) {
      results.errors.push(`no CPU profile from ${name} at ${file}`);
      continue;
    }
    results.profiles[name] = summariseProfile(file);
  }
}

async function main(): Promise<number> {
  let o: BenchOptions;
  try {
    const parsed = parseOptions(process.argv.slice(2), process.env);
    if (parsed === 'help') {
      process.stdout.write(`${usage()}\n`);
      return 0;
    }
    o = parsed;
  } catch (err) {
    if (err instanceof OptionError) {
      process.stderr.write(`bench: ${err.message}\n(npm run bench -- --help lists the options)\n`);
      return 2;
    }
    throw err;
  }
  const missing = ServiceNames.map((n) => join(RepoRoot, 'services', n, 'dist', 'main.js')).filter((f) => !existsSync(f));
  if (missing.length > 0) {
    process.stderr.write(`bench: the services are not built (${missing.join(', ')} missing); run \`npm run build\` first, or use \`npm run bench\`\n`);
    return 2;
  }

  const owned = new OwnedProcesses(say);
  owned.handleSignals();
  const started = new Date();
  const date = started.toISOString().slice(0, 10);
  const outDir = o.outDir ? resolve(o.outDir) : o.smoke ? mkdtempSync(join(tmpdir(), 'mesh-bench-smoke-')) : resolve(__dirname, '..', 'results');
  mkdirSync(outDir, { recursive: true });
  if (o.cpuProf) for (const f of readdirSync(outDir)) if (f.startsWith(`${date}-`) && f.endsWith('.cpuprofile')) rmSync(join(outDir, f));

  const results: BenchResults = {
    date,
    startedAt: started.toISOString(),
    finishedAt: '',
    smoke: o.smoke,
    command: ['npm run bench', ...(process.argv.length > 2 ? ['--', ...process.argv.slice(2)] : [])].join(' '),
    options: optionsForJson(o),
    environment: {
      node: process.version,
      platform: `${process.platform} ${release()}`,
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model,
      loadAverageAtStart: loadavg()
        .map((l) => Math.round(l * 100) / 100)
        .join(' '),
      git: gitState(),
    },
    baseline: {},
    mesh: { steps: [], processes: {}, serviceEnv: {} },
    ratios: {},
    exact: false,
    errors: [],
  };
  say(`${o.idle ? 'idle measurement' : o.smoke ? 'smoke run' : 'bench'}; results to ${outDir}`);
  const running: { services?: Services } = {};
  try {
    await (o.idle ? runIdle : run)(o, owned, results, outDir, running);
  } catch (err) {
    results.errors.push((err as Error).stack ?? String(err));
    say(`failed: ${(err as Error).message}`);
  } finally {
    say('stopping the services and nats-server');
    await owned.stopAll();
  }
  if (running.services) keepLogs(results, running.services);
  if (o.cpuProf) summariseProfiles(results, outDir);
  results.finishedAt = new Date().toISOString();
  finish(results, o);

  if (o.idle) {
    // Its own file: an idle run does not replace the day's full results.
    const json = join(outDir, `${date}-idle.json`);
    writeFileSync(json, `${JSON.stringify(results, null, 2)}\n`);
    process.stdout.write(renderTable(results));
    say(`wrote ${json}`);
    return results.exact ? 0 : 1;
  }
  const json = join(outDir, `${date}.json`);
  const svg = join(outDir, `${date}.svg`);
  writeFileSync(json, `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(svg, renderChart(results));
  process.stdout.write(renderTable(results));
  say(`wrote ${json} and ${svg}`);
  return results.exact ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`bench: ${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
