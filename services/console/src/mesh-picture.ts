/**
 * The console's picture of the mesh, rebuilt every refresh interval and
 * pushed to every open page. Everything is read, nothing is changed:
 *
 * - instances: NATS service discovery (`$SRV.STATS`, every instance answers);
 *   an instance that stops answering is shown `down` after
 *   `DownAfterRounds` missed rounds (well within the lease TTL) and
 *   forgotten a minute later; a new one appears on the first round it
 *   answers;
 * - events/s in: the counts each instance reports in its discovery stats
 *   (events consumed by a stage, requests taken by ingest);
 * - events/s out and retries/s: the stages' own counters on /metrics, at the
 *   HTTP address each instance announces in its discovery metadata;
 * - lag, ack floor, owners, retrying envelopes: the partitions as
 *   `mesh partitions` reads them ('@mesh/operations');
 * - dead letters: MESH_DLQ's message count per stage subject.
 *
 * A failing source leaves its numbers empty (null) and says why in
 * `problems`; the picture still goes out, so the page shows what it can.
 */
import { Streams, Subjects } from '@mesh/contracts';
import { dlqSubjectParts, partitionRows, type MeshContext, type PartitionRow } from '@mesh/operations';
import { CounterRates, Smoothed } from './counter-rates';
import { sumByLabel } from './prometheus-text';

export interface InstanceView {
  id: string;
  service: string;
  status: 'up' | 'down';
  /** host:port of its HTTP API, as it announces it. */
  http: string | null;
  version: string;
  firstSeen: string;
  lastSeen: string;
  /** Partitions whose lease it holds. */
  partitions: number[];
}

export interface ServiceView {
  name: string;
  /** Where it sits in the graph: ingest -> router -> handlers -> aggregator -> sink. */
  column: 'ingest' | 'router' | 'handlers' | 'aggregator' | 'sink' | 'other';
  inRate: number | null;
  outRate: number | null;
  retryRate: number | null;
  lag: number | null;
  /** Envelopes waiting for a retry (processor). */
  retrying: number | null;
  /** Dead letters of this stage now in MESH_DLQ. */
  deadLetters: number | null;
  instances: InstanceView[];
}

export interface OwnershipMove {
  at: string;
  stage: string;
  partition: number;
  from: string | null;
  to: string | null;
}

export interface MeshPicture {
  at: string;
  nats: { connected: boolean; server: string };
  services: ServiceView[];
  partitions: PartitionRow[] | null;
  moves: OwnershipMove[];
  deadLetters: { total: number; byStage: Record<string, number> } | null;
  problems: string[];
}

const DownAfterRounds = 2.5;
const ForgetDownAfterMs = 60_000;
const DiscoveryWaitMs = 500;
const ScrapeTimeoutMs = 800;
const KeptMoves = 100;

const Column: Record<string, ServiceView['column']> = {
  ingest: 'ingest',
  router: 'router',
  processor: 'handlers',
  aggregator: 'aggregator',
  sink: 'sink',
};
const ColumnOrder: ServiceView['column'][] = ['ingest', 'router', 'handlers', 'aggregator', 'sink', 'other'];

interface StatsAnswer {
  name: string;
  id: string;
  version?: string;
  metadata?: Record<string, string>;
  endpoints?: { name: string; subject: string; num_requests?: number; data?: { http?: { numRequests?: number } } }[];
}

interface Tracked {
  id: string;
  service: string;
  version: string;
  http: string | null;
  firstSeen: number;
  lastSeen: number;
  column: ServiceView['column'];
}

export interface MeshPictureOptions {
  ctx: MeshContext;
  /** This console's own service name: not drawn. */
  self: string;
  refreshMs: number;
  /** Bearer key for /metrics when the services require one. */
  metricsKey?: string;
  /** Whether the NATS connection is up now (it reconnects by itself). */
  isConnected: () => boolean;
  onError?: (what: string, err: unknown) => void;
}

export class MeshPictureSource {
  private readonly instances = new Map<string, Tracked>();
  private readonly rates = new CounterRates();
  private readonly smooth = new Smoothed(3);
  private readonly owners = new Map<string, string | null>();
  private readonly lastOwners = new Map<string, string>();
  private readonly moves: OwnershipMove[] = [];
  private timer?: NodeJS.Timeout;
  private running = false;
  private stopped = false;
  private readonly listeners = new Set<(p: MeshPicture) => void>();
  latest?: MeshPicture;

  constructor(private readonly o: MeshPictureOptions) {}

  /** Called with every new picture; returns the unsubscribe. */
  subscribe(fn: (p: MeshPicture) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  start(): void {
    const tick = () => {
      if (this.stopped) return;
      const began = Date.now();
      void this.refresh().finally(() => {
        if (this.stopped) return;
        this.timer = setTimeout(tick, Math.max(0, this.o.refreshMs - (Date.now() - began)));
      });
    };
    tick();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.listeners.clear();
  }

  private async refresh(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      const picture = await this.read();
      this.latest = picture;
      for (const fn of this.listeners) fn(picture);
    } catch (err) {
      this.o.onError?.('cannot read the mesh', err);
    } finally {
      this.running = false;
    }
  }

  private async read(): Promise<MeshPicture> {
    const now = Date.now();
    const problems: string[] = [];
    if (!this.o.isConnected()) {
      return {
        at: new Date(now).toISOString(),
        nats: { connected: false, server: this.o.ctx.natsUrl },
        services: [],
        partitions: null,
        moves: [...this.moves],
        deadLetters: null,
        problems: [`NATS is not reachable at ${this.o.ctx.natsUrl}; the console reconnects and shows the mesh again when it answers`],
      };
    }

    const [answers, partitions, dlq] = await Promise.all([
      this.discover().catch((err: Error) => {
        problems.push(`service discovery: ${err.message}`);
        return [] as StatsAnswer[];
      }),
      partitionRows(this.o.ctx, {}).catch((err: Error) => {
        problems.push(`partitions: ${err.message}`);
        return null;
      }),
      this.deadLetterCounts().catch((err: Error) => {
        problems.push(`dead letters: ${err.message}`);
        return null;
      }),
    ]);

    // Instances: who answered now, who stopped answering.
    const inByService = new Map<string, number>();
    for (const a of answers) {
      if (a.name === this.o.self) continue;
      const known = this.instances.get(a.id);
      const consumes = a.endpoints?.find((e) => e.name === 'consume')?.subject;
      const column = Column[a.name] ?? (consumes === Subjects.routedAll ? 'handlers' : 'other');
      this.instances.set(a.id, {
        id: a.id,
        service: a.name,
        version: a.version ?? '',
        http: a.metadata?.http ?? null,
        firstSeen: known?.firstSeen ?? now,
        lastSeen: now,
        column,
      });
      const count = (a.endpoints ?? []).reduce((n, e) => n + (e.num_requests ?? 0) + (e.data?.http?.numRequests ?? 0), 0);
      const rate = this.rates.observe(`${a.id}/in`, count, now);
      if (rate !== undefined) inByService.set(a.name, (inByService.get(a.name) ?? 0) + rate);
    }
    const downAfter = this.o.refreshMs * DownAfterRounds;
    for (const [id, t] of this.instances) if (now - t.lastSeen > ForgetDownAfterMs) this.instances.delete(id);
    this.rates.prune(now - ForgetDownAfterMs);

    // Out and retries from the stages' own counters.
    const up = [...this.instances.values()].filter((t) => now - t.lastSeen <= downAfter);
    const scraped = await Promise.all(up.map((t) => this.scrape(t, now)));
    const outByService = new Map<string, number>();
    const retriesByService = new Map<string, number>();
    for (const s of scraped) {
      if (!s) continue;
      if (s.out !== undefined) outByService.set(s.service, (outByService.get(s.service) ?? 0) + s.out);
      if (s.retries !== undefined) retriesByService.set(s.service, (retriesByService.get(s.service) ?? 0) + s.retries);
    }

    this.noteMoves(partitions, now);
    const ownedBy = new Map<string, number[]>();
    for (const r of partitions ?? []) {
      if (r.owner === null) continue;
      const list = ownedBy.get(r.owner) ?? [];
      list.push(r.partition);
      ownedBy.set(r.owner, list);
    }

    const names = new Set([...this.instances.values()].map((t) => t.service));
    // The four stages are always drawn, with no instance when none runs.
    for (const s of ['ingest', 'router', 'processor', 'aggregator']) names.add(s);
    const services: ServiceView[] = [...names].map((name) => {
      const mine = [...this.instances.values()].filter((t) => t.service === name);
      const column = mine[0]?.column ?? Column[name] ?? 'other';
      const rows = partitions?.filter((r) => r.stage === name);
      const hasRows = rows !== undefined && rows.length > 0;
      const anyUp = mine.some((t) => now - t.lastSeen <= downAfter);
      return {
        name,
        column,
        inRate: this.smoothRate(inByService, name, 'in', anyUp),
        outRate: this.smoothRate(outByService, name, 'out', anyUp),
        retryRate: this.smoothRate(retriesByService, name, 'retries', anyUp),
        lag: hasRows ? rows.reduce((n, r) => n + (r.lag ?? 0), 0) : null,
        retrying: hasRows && rows.some((r) => r.retrying !== null) ? rows.reduce((n, r) => n + (r.retrying ?? 0), 0) : null,
        deadLetters: dlq ? (dlq.byStage[name] ?? 0) : null,
        instances: mine
          .map((t) => ({
            id: t.id,
            service: t.service,
            status: now - t.lastSeen <= downAfter ? ('up' as const) : ('down' as const),
            http: t.http,
            version: t.version,
            firstSeen: new Date(t.firstSeen).toISOString(),
            lastSeen: new Date(t.lastSeen).toISOString(),
            partitions: (ownedBy.get(t.id) ?? []).sort((a, b) => a - b),
          }))
          .sort((a, b) => a.id.localeCompare(b.id)),
      };
    });
    services.sort((a, b) => ColumnOrder.indexOf(a.column) - ColumnOrder.indexOf(b.column) || a.name.localeCompare(b.name));
    return {
      at: new Date(now).toISOString(),
      nats: { connected: true, server: this.o.ctx.natsUrl },
      services,
      partitions,
      moves: [...this.moves],
      deadLetters: dlq,
      problems,
    };
  }

  /** A service's rate averaged over the last readings; 0 when none of its instances runs, null when unknown. */
  private smoothRate(m: Map<string, number>, service: string, what: string, anyUp: boolean): number | null {
    const v = m.get(service);
    if (v === undefined) return anyUp ? null : 0;
    return this.smooth.add(`${service}/${what}`, v);
  }

  private async discover(): Promise<StatsAnswer[]> {
    const answers: StatsAnswer[] = [];
    for await (const m of await this.o.ctx.nc.requestMany('$SRV.STATS', '', { strategy: 'timer', maxWait: DiscoveryWaitMs })) {
      try {
        const a = m.json<StatsAnswer>();
        if (typeof a.name === 'string' && typeof a.id === 'string') answers.push(a);
      } catch {
        // not a discovery answer: ignored
      }
    }
    return answers;
  }

  private async scrape(t: Tracked, now: number): Promise<{ service: string; out?: number; retries?: number } | undefined> {
    if (!t.http) return undefined;
    // A service listening on every address is reached on this host; others at the address they announce.
    const address = t.http.replace(/^(0\.0\.0\.0|\[::\]|::):/, '127.0.0.1:');
    try {
      const res = await fetch(`http://${address}/metrics`, {
        signal: AbortSignal.timeout(ScrapeTimeoutMs),
        headers: this.o.metricsKey ? { authorization: `Bearer ${this.o.metricsKey}` } : {},
      });
      if (!res.ok) return undefined;
      const sums = sumByLabel(await res.text(), ['mesh_events_out_total', 'mesh_handler_retries_total'], 'stage');
      // A counter a service does not have (only handler hosts count retries) stays unknown.
      const rateOf = (name: string, series: string) => {
        const samples = sums.get(name)!;
        // A handler host's retry counter appears with its first retry: until then it is 0, not unknown.
        if (samples.size === 0 && !(series === 'retries' && t.column === 'handlers')) return undefined;
        return this.rates.observe(
          `${t.id}/${series}`,
          [...samples.values()].reduce((a, b) => a + b, 0),
          now,
        );
      };
      return { service: t.service, out: rateOf('mesh_events_out_total', 'out'), retries: rateOf('mesh_handler_retries_total', 'retries') };
    } catch {
      return undefined;
    }
  }

  private async deadLetterCounts(): Promise<{ total: number; byStage: Record<string, number> }> {
    const info = await this.o.ctx.jsm.streams.info(Streams.dlq, { subjects_filter: Subjects.dlqAll });
    const byStage: Record<string, number> = {};
    for (const [subject, n] of Object.entries(info.state.subjects ?? {})) {
      const stage = dlqSubjectParts(subject).stage ?? 'unknown';
      byStage[stage] = (byStage[stage] ?? 0) + n;
    }
    return { total: info.state.messages, byStage };
  }

  /**
   * A partition changes hands in two steps when its owner dies (the lease
   * lapses, then another instance takes it): both are noted, the second as
   * a move from the last owner to the new one, which is what happened.
   */
  private noteMoves(rows: PartitionRow[] | null, now: number): void {
    if (!rows) return;
    for (const r of rows) {
      const key = `${r.stage}/${r.partition}`;
      const seen = this.owners.has(key);
      const before = this.owners.get(key) ?? null;
      const lastOwner = this.lastOwners.get(key) ?? null;
      this.owners.set(key, r.owner);
      if (r.owner !== null) this.lastOwners.set(key, r.owner);
      if (!seen || before === r.owner) continue;
      const from = before ?? lastOwner;
      if (from === r.owner) continue;
      this.moves.push({ at: new Date(now).toISOString(), stage: r.stage, partition: r.partition, from, to: r.owner });
      if (this.moves.length > KeptMoves) this.moves.shift();
    }
  }
}
