/**
 * The bench's options: defaults, then the `--smoke` preset, then `BENCH_*`
 * environment variables, then command-line flags. A bad value stops the
 * bench with a message naming the flag, the value and what is accepted.
 */
import { parseArgs } from 'node:util';

export interface BenchOptions {
  /** Offered loads of the load steps in events/s; `Infinity` is 'max' (as fast as the HTTP workers go). */
  loads: number[];
  /** Length of each load step's posting phase. */
  durationMs: number;
  /** Bytes of padding in each event's `data.pad`. */
  eventBytes: number;
  /** Events per HTTP request in the load steps. */
  batch: number;
  /** HTTP requests in flight at most. */
  concurrency: number;
  /** Partition keys the events are spread over (round robin). */
  keys: number;
  /** How many of those keys are watched in KV to time each of their events. */
  probes: number;
  /** Offered load of the latency step (events/s); 0 skips the step. */
  latencyRate: number;
  /** Events per HTTP request in the latency step. */
  latencyBatch: number;
  /** HTTP requests in flight at most in the latency step: enough that requests go out when due. */
  latencyConcurrency: number;
  latencyDurationMs: number;
  /** Events through the raw baseline, one event per message. */
  baselineEvents: number;
  /** Events through the raw baseline, `baselineBatch` events per message. */
  baselineBatchedEvents: number;
  baselineBatch: number;
  skipBaseline: boolean;
  /** Run everything secured: generated least-privilege identities, TLS with client certificates, MESH_PROVISION=false. */
  secure: boolean;
  /** Longest wait, after a step's last post, for every key's totals to be exact. */
  drainTimeoutMs: number;
  /** Profile the services (`--cpu-prof`) and summarise their hottest functions. */
  cpuProf: boolean;
  /** NODE_OPTIONS for the services (`--max-semi-space-size=32`, say), to try runtime settings. */
  serviceNodeOptions: string;
  /** Where results go; the smoke run defaults to a temporary directory. */
  outDir?: string;
  smoke: boolean;
  /** CPU of each process with the mesh started and settled and no load, measured over this long; 0 skips it. */
  idleWindowMs: number;
  /** Only the idle measurement, once per partition count of `idlePartitions`, each on a fresh nats-server. */
  idle: boolean;
  /** Partition counts (MESH_PARTITIONS) the idle measurement of `--idle` runs at. */
  idlePartitions: number[];
}

export const Defaults: BenchOptions = {
  loads: [1000, 2000, 3000, 4000, Number.POSITIVE_INFINITY],
  durationMs: 15_000,
  eventBytes: 100,
  batch: 100,
  concurrency: 16,
  keys: 1000,
  probes: 100,
  latencyRate: 1000,
  latencyBatch: 1,
  latencyConcurrency: 64,
  latencyDurationMs: 20_000,
  baselineEvents: 30_000,
  baselineBatchedEvents: 500_000,
  baselineBatch: 100,
  skipBaseline: false,
  secure: false,
  drainTimeoutMs: 120_000,
  cpuProf: false,
  serviceNodeOptions: '',
  smoke: false,
  idleWindowMs: 10_000,
  idle: false,
  idlePartitions: [16, 64],
};

/** A few seconds end to end: checks the harness works and the totals are exact, nothing about speed. */
export const SmokePreset: Partial<BenchOptions> = {
  loads: [500, Number.POSITIVE_INFINITY],
  durationMs: 2_000,
  keys: 50,
  probes: 10,
  latencyRate: 200,
  latencyDurationMs: 2_000,
  baselineEvents: 2_000,
  baselineBatchedEvents: 20_000,
  drainTimeoutMs: 60_000,
  idleWindowMs: 2_000,
};

/** Largest request body ingest takes by default (MESH_MAX_BODY_BYTES). */
const MaxBodyBytes = 1_048_576;

export class OptionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OptionError';
  }
}

interface Spec {
  key: keyof BenchOptions;
  env: string;
  kind: 'loads' | 'duration' | 'count' | 'size' | 'flag' | 'path' | 'text' | 'counts' | 'window';
  doc: string;
}

const Specs: Record<string, Spec> = {
  '--loads': {
    key: 'loads',
    env: 'BENCH_LOADS',
    kind: 'loads',
    doc: "offered loads of the load steps, events/s, comma-separated; 'max' = as fast as the HTTP workers go",
  },
  '--duration': { key: 'durationMs', env: 'BENCH_DURATION', kind: 'duration', doc: 'posting time of each load step (ms, s, m)' },
  '--event-bytes': { key: 'eventBytes', env: 'BENCH_EVENT_BYTES', kind: 'size', doc: "bytes of padding in each event's data" },
  '--batch': { key: 'batch', env: 'BENCH_BATCH', kind: 'count', doc: 'events per HTTP request in the load steps' },
  '--concurrency': { key: 'concurrency', env: 'BENCH_CONCURRENCY', kind: 'count', doc: 'HTTP requests in flight at most' },
  '--keys': { key: 'keys', env: 'BENCH_KEYS', kind: 'count', doc: 'partition keys the events are spread over' },
  '--probes': { key: 'probes', env: 'BENCH_PROBES', kind: 'count', doc: 'keys whose aggregate is watched to time each of their events' },
  '--latency-rate': { key: 'latencyRate', env: 'BENCH_LATENCY_RATE', kind: 'size', doc: 'offered load of the latency step, events/s (0 skips it)' },
  '--latency-batch': { key: 'latencyBatch', env: 'BENCH_LATENCY_BATCH', kind: 'count', doc: 'events per HTTP request in the latency step' },
  '--latency-concurrency': {
    key: 'latencyConcurrency',
    env: 'BENCH_LATENCY_CONCURRENCY',
    kind: 'count',
    doc: 'HTTP requests in flight at most in the latency step',
  },
  '--latency-duration': { key: 'latencyDurationMs', env: 'BENCH_LATENCY_DURATION', kind: 'duration', doc: 'posting time of the latency step' },
  '--baseline-events': { key: 'baselineEvents', env: 'BENCH_BASELINE_EVENTS', kind: 'count', doc: 'events through the raw baseline, one per message' },
  '--baseline-batched-events': {
    key: 'baselineBatchedEvents',
    env: 'BENCH_BASELINE_BATCHED_EVENTS',
    kind: 'count',
    doc: 'events through the raw baseline, batched',
  },
  '--baseline-batch': { key: 'baselineBatch', env: 'BENCH_BASELINE_BATCH', kind: 'count', doc: 'events per message in the batched baseline' },
  '--skip-baseline': { key: 'skipBaseline', env: 'BENCH_SKIP_BASELINE', kind: 'flag', doc: 'do not run the raw baseline' },
  '--secure': {
    key: 'secure',
    env: 'BENCH_SECURE',
    kind: 'flag',
    doc: 'run secured: `mesh nats-config --tls` identities, TLS with client certificates, each service its own NATS user; the bench and the baselines as admin',
  },
  '--drain-timeout': { key: 'drainTimeoutMs', env: 'BENCH_DRAIN_TIMEOUT', kind: 'duration', doc: "longest wait after a step's last post for exact totals" },
  '--cpu-prof': {
    key: 'cpuProf',
    env: 'BENCH_CPU_PROF',
    kind: 'flag',
    doc: 'profile the services (V8 sampling profiler) and summarise their hottest functions',
  },
  '--service-node-options': {
    key: 'serviceNodeOptions',
    env: 'BENCH_SERVICE_NODE_OPTIONS',
    kind: 'text',
    doc: 'NODE_OPTIONS for the services, to try runtime settings',
  },
  '--out': { key: 'outDir', env: 'BENCH_OUT', kind: 'path', doc: 'results directory (default bench/results; --smoke: a temporary directory)' },
  '--idle-window': {
    key: 'idleWindowMs',
    env: 'BENCH_IDLE_WINDOW',
    kind: 'window',
    doc: 'CPU per process with the mesh settled and no load, measured this long right after the services are up (0 skips it)',
  },
  '--idle': {
    key: 'idle',
    env: 'BENCH_IDLE',
    kind: 'flag',
    doc: 'only the idle measurement, on a fresh nats-server and services for each of --idle-partitions; no baseline, no load',
  },
  '--idle-partitions': {
    key: 'idlePartitions',
    env: 'BENCH_IDLE_PARTITIONS',
    kind: 'counts',
    doc: 'partition counts (MESH_PARTITIONS) --idle measures, comma-separated',
  },
  '--smoke': { key: 'smoke', env: 'BENCH_SMOKE', kind: 'flag', doc: 'a few seconds: checks the harness works and totals are exact; exits 1 otherwise' },
};

export function usage(): string {
  const lines = ['usage: npm run bench -- [options]', ''];
  for (const [flag, s] of Object.entries(Specs)) {
    const def = Defaults[s.key];
    const shown = s.kind === 'flag' || def === undefined || def === '' ? '' : ` (default ${describe(s.key, def)})`;
    lines.push(`  ${(flag + (s.kind === 'flag' ? '' : ' <v>')).padEnd(30)} ${s.doc}${shown}; env ${s.env}`);
  }
  lines.push('', 'MESH_* variables in the environment are passed on to the services (MESH_BATCH_MESSAGES=128, say).');
  return lines.join('\n');
}

function describe(key: keyof BenchOptions, v: unknown): string {
  if (key === 'loads') return (v as number[]).map((n) => (Number.isFinite(n) ? String(n) : 'max')).join(',');
  if (key === 'idlePartitions') return (v as number[]).join(',');
  if (key.endsWith('Ms')) return `${Number(v) / 1000}s`;
  return String(v);
}

export function parseDurationMs(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) return undefined;
  const unit = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }[(m[2] ?? 'ms') as 'ms' | 's' | 'm' | 'h'];
  return Math.round(Number(m[1]) * unit);
}

function parseValue(where: string, s: Spec, raw: string): unknown {
  const bad = (accepted: string) => new OptionError(`${where} = "${raw}" is invalid: ${accepted}`);
  switch (s.kind) {
    case 'flag':
      if (['', '1', 'true', 'yes'].includes(raw)) return true;
      if (['0', 'false', 'no'].includes(raw)) return false;
      throw bad('must be true or false');
    case 'path':
      if (raw === '') throw bad('must be a directory path');
      return raw;
    case 'text':
      return raw;
    case 'duration': {
      const ms = parseDurationMs(raw);
      if (ms === undefined || ms <= 0) throw bad('must be a positive duration such as 500ms, 15s or 2m');
      return ms;
    }
    case 'window': {
      const ms = parseDurationMs(raw);
      if (ms === undefined) throw bad('must be a duration such as 5s or 10s, or 0 to skip');
      return ms;
    }
    case 'counts': {
      const parts = raw.split(',').map((p) => p.trim());
      if (parts.length === 0 || parts.some((p) => !/^\d+$/.test(p) || Number(p) < 1 || Number(p) > 1024)) {
        throw bad('must list partition counts from 1 to 1024, comma-separated, such as 16,64');
      }
      return parts.map(Number);
    }
    case 'count':
    case 'size': {
      if (!/^\d+$/.test(raw)) throw bad(`must be a whole number${s.kind === 'count' ? ' from 1' : ' from 0'}`);
      const n = Number(raw);
      if (s.kind === 'count' && n < 1) throw bad('must be a whole number from 1');
      return n;
    }
    case 'loads': {
      const parts = raw
        .split(',')
        .map((p) => p.trim())
        .filter((p) => p !== '');
      if (parts.length === 0) throw bad('must list offered loads in events/s, such as 1000,5000,max');
      return parts.map((p) => {
        if (p === 'max') return Number.POSITIVE_INFINITY;
        if (!/^\d+$/.test(p) || Number(p) < 1) throw bad(`'${p}' is not a load; use whole events/s from 1, or 'max'`);
        return Number(p);
      });
    }
  }
}

export function parseOptions(argv: readonly string[], env: NodeJS.ProcessEnv): BenchOptions | 'help' {
  // node:util's parser splits the words (--flag, --flag=value, --flag value); the specs check what they mean.
  const { tokens } = parseArgs({
    args: [...argv],
    options: {
      help: { type: 'boolean', short: 'h' },
      ...Object.fromEntries(
        Object.entries(Specs).map(([flag, s]) => [flag.slice(2), { type: s.kind === 'flag' ? ('boolean' as const) : ('string' as const) }]),
      ),
    },
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const fromFlags = new Map<Spec, unknown>();
  const known = `known options: ${Object.keys(Specs).join(', ')}, --help`;
  for (const t of tokens) {
    if (t.kind === 'positional') throw new OptionError(`unknown option '${t.value}'; ${known}`);
    if (t.kind === 'option-terminator') continue;
    if (t.name === 'help') return 'help';
    const flag = `--${t.name}`;
    const spec = Specs[flag];
    if (!spec || t.rawName !== flag) throw new OptionError(`unknown option '${t.rawName}'; ${known}`);
    if (spec.kind !== 'flag' && t.value === undefined) throw new OptionError(`${flag} needs a value: ${spec.doc}`);
    fromFlags.set(spec, parseValue(flag, spec, t.value ?? ''));
  }
  const fromEnv = new Map<Spec, unknown>();
  for (const s of Object.values(Specs)) {
    const raw = env[s.env];
    if (raw !== undefined) fromEnv.set(s, parseValue(s.env, s, raw));
  }
  const smokeSpec = Specs['--smoke'];
  const smoke = Boolean(fromFlags.get(smokeSpec) ?? fromEnv.get(smokeSpec) ?? false);
  const o: BenchOptions = { ...Defaults, ...(smoke ? SmokePreset : {}) };
  const target = o as unknown as Record<string, unknown>;
  for (const [s, v] of fromEnv) target[s.key] = v;
  for (const [s, v] of fromFlags) target[s.key] = v;
  return check(o);
}

function check(o: BenchOptions): BenchOptions {
  if (o.idle && o.idleWindowMs === 0) throw new OptionError('--idle-window = 0 is invalid with --idle: the idle measurement needs a window, such as 5s');
  if (o.probes > o.keys) throw new OptionError(`--probes = ${o.probes} is invalid: at most --keys (${o.keys}) keys can be watched`);
  // JSON of one event without padding is about 190 bytes; keep requests under ingest's body limit.
  for (const [flag, batch] of [
    ['--batch', o.batch],
    ['--latency-batch', o.latencyBatch],
  ] as const) {
    const bytes = batch * (o.eventBytes + 220);
    if (bytes > MaxBodyBytes) {
      throw new OptionError(
        `${flag} = ${batch} with --event-bytes = ${o.eventBytes} makes requests of about ${bytes} bytes, over ingest's ${MaxBodyBytes}-byte body limit; ` +
          `use at most ${Math.floor(MaxBodyBytes / (o.eventBytes + 220))} events per request`,
      );
    }
  }
  const messageBytes = o.baselineBatch * (o.eventBytes + 220);
  if (messageBytes > MaxBodyBytes) {
    throw new OptionError(`--baseline-batch = ${o.baselineBatch} with --event-bytes = ${o.eventBytes} makes messages over NATS's 1 MiB max_payload`);
  }
  return o;
}

/** `1000` → `1000/s`, Infinity → `max`. */
export function loadLabel(load: number): string {
  return Number.isFinite(load) ? `${load}/s` : 'max';
}
