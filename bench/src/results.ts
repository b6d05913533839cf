/** What a bench run records (bench/results/<date>.json) and the table it prints. */
import type { Mismatch } from './aggregate-watch';
import type { ProfileSummary } from './cpu-profile';
import type { IdleResult } from './idle';
import type { LatencySummary } from './percentiles';
import type { BaselineResult } from './raw-baseline';

export interface StepCpu {
  userS: number;
  sysS: number;
  /** CPU ms (user + sys) per 1,000 events of the step. */
  msPer1kEvents: number;
}

export interface StepResult {
  name: string;
  kind: 'latency' | 'load';
  /** Offered load in events/s, or 'max'. */
  offered: number | 'max';
  batch: number;
  concurrency: number;
  durationMs: number;
  requests: number;
  events: number;
  /** Requests sent again after a 503 or a dropped connection. */
  retries: number;
  /** Events accepted (202) per second of posting. */
  postedEventsPerSec: number;
  /** Most a request went out after it was due, ms (open loop; 0 at 'max'). */
  maxLagMs: number;
  /** First post of the step until every key's totals were exact. */
  e2eSeconds?: number;
  e2eEventsPerSec?: number;
  /** Last 202 until every key's totals were exact: the backlog the stages had left. */
  drainSeconds?: number;
  exact: boolean;
  mismatches: Mismatch[];
  /** Did the mesh keep up: end-to-end events/s at least 95% of the offered load (always true at 'max'). */
  keptUp: boolean;
  /** Post → the event's aggregate stored in KV (visible to GET), per probe event, ms. */
  latencyMs?: LatencySummary;
  /** Post → the KV update reached the bench's watcher: the above plus delivery to the bench. */
  observedLatencyMs?: LatencySummary;
  /** Probe events never seen in their aggregate. */
  unseenProbes: number;
  /** Post → 202 per HTTP request, ms. */
  acceptMs?: LatencySummary;
  cpu: Record<string, StepCpu>;
}

export interface ProcessFigures {
  pid: number;
  cpuUserS: number;
  cpuSysS: number;
  peakRssMiB: number;
}

export interface BenchResults {
  date: string;
  startedAt: string;
  finishedAt: string;
  smoke: boolean;
  command: string;
  options: Record<string, unknown>;
  environment: Record<string, unknown>;
  baseline: {
    perEvent?: BaselineResult;
    batched?: BaselineResult;
    /**
     * The batched baseline again after the mesh steps, with the services
     * stopped: the machine's speed drifts (same code, same hour: 9,600 to
     * 18,400 events/s), so the mesh is compared with the mean of the runs
     * that bracket it, and the drift between them is shown.
     */
    batchedAfter?: BaselineResult;
  };
  mesh: {
    /** Every key gets a result and the services' code is compiled; not a measurement. */
    warmup?: StepResult;
    /** Unmeasured: the latency step's requests for a few seconds first, so its code and connections are warm. */
    latencyWarmup?: StepResult;
    latency?: StepResult;
    steps: StepResult[];
    saturation?: { step: string; eventsPerSec: number };
    /** Whole run, read from /proc just before the services were stopped. */
    processes: Record<string, ProcessFigures>;
    serviceEnv: Record<string, string>;
    /** CPU with the services settled and no load: in a full run once, before the warm-up; with --idle once per partition count. */
    idle?: IdleResult[];
    /** Where the services' logs were kept, and their warnings and errors. */
    logs?: { dir: string; services: Record<string, { warn: number; error: number; first: string[] }> };
  };
  ratios: {
    /** Against the mean of the batched baseline before and after the mesh (the one run when only one exists). */
    saturationVsBatchedBaseline?: number;
    /** Batched baseline after the mesh / before it: how much the machine's speed moved during the run. */
    batchedBaselineDrift?: number;
    saturationVsPerEventBaseline?: number;
    latencyStepVsPerEventBaseline?: number;
  };
  profiles?: Record<string, ProfileSummary>;
  exact: boolean;
  errors: string[];
}

const int = (n: number | undefined) => (n === undefined || !Number.isFinite(n) ? '-' : Math.round(n).toLocaleString('en-US'));
const fix = (n: number | undefined, d = 1) => (n === undefined || !Number.isFinite(n) ? '-' : n.toFixed(d));
const ratio = (n: number | undefined) => (n === undefined || !Number.isFinite(n) ? '-' : n >= 0.1 ? `${n.toFixed(2)}×` : `${n.toFixed(3)}×`);

function table(header: string[], rows: string[][], alignLeft = 1): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => '  ' + cells.map((c, i) => (i < alignLeft ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(header), '  ' + widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)];
}

export const ServiceOrder = ['ingest', 'router', 'processor', 'aggregator', 'nats-server', 'bench'];

export function renderTable(r: BenchResults): string {
  const out: string[] = [];
  const o = r.options;
  out.push('', `Mesh bench ${r.date}${r.smoke ? ' (smoke: checks the harness, says nothing about speed)' : ''}`);
  out.push(
    `  ${o.eventBytes} bytes of padding per event, ${o.keys} keys (${o.probes} probed), node ${r.environment.node}, ${r.environment.cpus} cores, load average at start ${r.environment.loadAverageAtStart}`,
  );

  const idle = r.mesh.idle ?? [];
  if (idle.length > 0) {
    out.push('', `Idle: the mesh settled, no load; CPU ms per second of a ${idle[0].windowS} s window (total: every process but the bench, % of one core)`);
    const names = [...new Set(idle.flatMap((i) => Object.keys(i.msPerS)))];
    const ordered = [...ServiceOrder.filter((n) => names.includes(n)), ...names.filter((n) => !ServiceOrder.includes(n))];
    out.push(
      ...table(
        ['partitions', ...ordered, 'total % of a core'],
        idle.map((i) => [String(i.partitions), ...ordered.map((n) => fix(i.msPerS[n])), fix(i.totalPctOfCore, 2)]),
      ),
    );
  }

  const b = r.baseline;
  if (b.perEvent || b.batched) {
    out.push('', 'Raw baseline: bare NATS client, 4 file streams, 3 relay processes (consume → publish → ack) + a counter');
    const rows = [b.perEvent, b.batched, b.batchedAfter]
      .filter((x): x is BaselineResult => x !== undefined)
      .map((x) => [
        x === b.batchedAfter ? `${x.label}, after the mesh` : x.label,
        int(x.events),
        int(x.messages),
        fix(x.seconds, 2),
        int(x.eventsPerSec),
        int(x.messagesPerSec),
        fix(cpuMsPer1k(x), 1),
      ]);
    out.push(...table(['variant', 'events', 'messages', 'seconds', 'events/s', 'msgs/s', 'cpu ms/1k ev'], rows));
    const drift = r.ratios.batchedBaselineDrift;
    if (drift !== undefined) {
      out.push(
        `  the machine's speed moved by ${((drift - 1) * 100).toFixed(0)}% between the two batched runs${Math.abs(drift - 1) > 0.15 ? ': figures of this run are uncertain by about that much' : ''}`,
      );
    }
  }

  const steps = [r.mesh.latency, ...r.mesh.steps].filter((s): s is StepResult => s !== undefined);
  if (steps.length > 0) {
    out.push(
      '',
      'Mesh over HTTP: e2e = first post → exact totals of every key in GET /v1/aggregates/totals/<key>; latency = post → event stored in its aggregate',
    );
    const rows = steps.map((s) => [
      s.kind === 'latency' ? `latency ${offeredLabel(s.offered)}` : offeredLabel(s.offered),
      String(s.batch),
      int(s.events),
      int(s.postedEventsPerSec),
      int(s.e2eEventsPerSec),
      s.offered === 'max' ? '-' : s.keptUp ? 'yes' : 'no',
      fix(s.drainSeconds, 1),
      fix(s.latencyMs?.p50),
      fix(s.latencyMs?.p95),
      fix(s.latencyMs?.p99),
      String(s.latencyMs?.samples ?? 0),
      fix(s.acceptMs?.p99),
      s.exact ? 'yes' : `NO (${s.mismatches.length})`,
      ratio(batchedReference(r) && s.e2eEventsPerSec !== undefined ? s.e2eEventsPerSec / batchedReference(r)! : undefined),
    ]);
    out.push(
      ...table(
        [
          'offered',
          'ev/req',
          'events',
          'posted/s',
          'e2e ev/s',
          'kept up',
          'drain s',
          'p50 ms',
          'p95 ms',
          'p99 ms',
          'samples',
          '202 p99',
          'exact',
          'vs batched raw',
        ],
        rows,
      ),
    );
  }

  const sat = r.mesh.saturation;
  if (sat) {
    out.push('', `Saturation: ${int(sat.eventsPerSec)} events/s end to end (step ${sat.step})`);
    if (b.batched) {
      const bracket = b.batchedAfter ? `, the mean of ${int(b.batched.eventsPerSec)} before and ${int(b.batchedAfter.eventsPerSec)} after the mesh` : '';
      out.push(
        `  = ${ratio(r.ratios.saturationVsBatchedBaseline)} the batched raw baseline (${int(batchedReference(r))} events/s${bracket}, ${b.batched.perMessage} per message)`,
      );
    }
    if (b.perEvent) out.push(`  = ${ratio(r.ratios.saturationVsPerEventBaseline)} the per-event raw baseline (${int(b.perEvent.eventsPerSec)} events/s)`);
  }
  const lat = r.mesh.latency;
  if (lat?.latencyMs) {
    out.push(
      `Latency at ${offeredLabel(lat.offered)} (${lat.batch} event(s) per request): p50 ${fix(lat.latencyMs.p50)} ms, p95 ${fix(lat.latencyMs.p95)} ms, p99 ${fix(lat.latencyMs.p99)} ms, max ${fix(lat.latencyMs.max)} ms over ${lat.latencyMs.samples} events`,
    );
  }

  const procs = r.mesh.processes;
  if (Object.keys(procs).length > 0) {
    const satStep = r.mesh.steps.find((s) => s.name === sat?.step);
    out.push('', `Processes over the whole mesh run${satStep ? `; CPU per 1,000 events in step ${satStep.name}` : ''}`);
    const names = [...ServiceOrder.filter((n) => n in procs), ...Object.keys(procs).filter((n) => !ServiceOrder.includes(n))];
    const rows = names.map((n) => [
      n,
      String(procs[n].pid),
      fix(procs[n].cpuUserS, 2),
      fix(procs[n].cpuSysS, 2),
      fix(procs[n].peakRssMiB, 1),
      fix(satStep?.cpu[n]?.msPer1kEvents, 1),
    ]);
    out.push(...table(['process', 'pid', 'cpu user s', 'cpu sys s', 'peak RSS MiB', 'cpu ms/1k ev'], rows));
  }

  const logs = r.mesh.logs;
  if (logs) {
    const noisy = Object.entries(logs.services).filter(([, l]) => l.warn + l.error > 0);
    if (noisy.length > 0) {
      out.push('', `Service warnings and errors (logs in ${logs.dir}):`);
      for (const [name, l] of noisy) out.push(`  ${name}: ${l.warn} warn, ${l.error} error; first: ${l.first[0] ?? ''}`);
    }
  }

  if (r.profiles) {
    for (const [name, p] of Object.entries(r.profiles)) {
      out.push('', `Hottest code in ${name} (self time, ${int(p.busyMs)} ms busy): ${p.file}`);
      out.push(
        ...table(
          ['module', 'ms', '%'],
          p.modules.slice(0, 6).map((m) => [m.name, int(m.selfMs), fix(m.percent)]),
        ),
      );
      out.push(
        ...table(
          ['function', 'ms', '%'],
          p.functions.slice(0, 10).map((m) => [m.name, int(m.selfMs), fix(m.percent)]),
        ),
      );
    }
  }

  if (r.errors.length > 0) out.push('', 'Errors:', ...r.errors.map((e) => `  ${e}`));
  if (r.options.idle) out.push('', r.exact ? 'Idle measured at every partition count.' : 'IDLE MEASUREMENT FAILED: see the errors above.', '');
  else out.push('', r.exact ? 'Totals exact for every key after every step.' : 'TOTALS NOT EXACT: see the steps above and the mismatches in the JSON.', '');
  return out.join('\n');
}

/** What the mesh is compared with: the mean of the batched baseline runs that bracket it. */
export function batchedReference(r: Pick<BenchResults, 'baseline'>): number | undefined {
  const runs = [r.baseline.batched, r.baseline.batchedAfter].filter((x): x is BaselineResult => x !== undefined);
  return runs.length === 0 ? undefined : runs.reduce((n, x) => n + x.eventsPerSec, 0) / runs.length;
}

export function offeredLabel(o: number | 'max'): string {
  return o === 'max' ? 'max' : `${o}/s`;
}

function cpuMsPer1k(b: BaselineResult): number {
  let s = 0;
  for (const c of Object.values(b.cpu)) s += c.userS + c.sysS;
  return (s * 1000) / (b.events / 1000);
}
