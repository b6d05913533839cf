/**
 * The monitoring shipped in deploy/ speaks about metrics that exist:
 *   - every metric name in the alert rules (deploy/k8s/monitoring/
 *     prometheus-rules.yaml) and the Grafana dashboard
 *     (deploy/grafana/mesh-dashboard.json) is one the four services really
 *     serve on GET /metrics, read from the running services after a load
 *     that touches every instrument (so a renamed metric fails here); the
 *     few other names are Prometheus' `up` and the kubelet's container
 *     metrics, listed below; label matchers name labels those metrics carry;
 *   - the rules have the PrometheusRule shape (groups, rules with alert,
 *     expr, for, labels.severity, annotations), balanced expressions, and
 *     the partitions threshold equals MESH_PARTITIONS of mesh-config.yaml;
 *   - the ServiceMonitor selects a Service of each of the four services in
 *     deploy/k8s on a port of that name, which reaches the container's
 *     HTTP_PORT; the monitoring objects are in their own kustomization, not
 *     in the default one (clusters without the Prometheus Operator).
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments, parseDocument } from 'yaml';
import type { CloudEvent } from '@mesh/contracts';
import {
  eventually,
  orderEvent,
  postEvents,
  RepoRoot,
  startMesh,
  startNatsServer,
  stopAll,
  type NatsServer,
  type ServiceName,
  type ServiceProcess,
} from '@mesh/testing';
import { parsePrometheusText, type Exposition } from './support/prometheus-text';

const Deploy = join(RepoRoot, 'deploy');
const Monitoring = join(Deploy, 'k8s', 'monitoring');
const Services = ['ingest', 'router', 'processor', 'aggregator'] as const;

/** Names the rules and dashboard may use that the services do not serve: Prometheus' own and the kubelet's (cAdvisor). */
const NotFromServices = new Set(['up', 'container_memory_working_set_bytes', 'container_cpu_usage_seconds_total']);
/** Labels Prometheus and the ServiceMonitor add to every scraped series (the services do not). */
const TargetLabels = new Set(['namespace', 'job', 'pod', 'instance', 'service', 'endpoint', 'container']);

const PromqlKeywords = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'offset', 'bool', 'inf', 'nan']);

/** Metric names in a PromQL expression: identifiers that are not functions, keywords, labels, strings, durations or numbers. */
function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const m of bare.matchAll(/(?<![\w.$])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?/g)) {
    if (m[2] || PromqlKeywords.has(m[1].toLowerCase())) continue;
    names.add(m[1]);
  }
  return [...names];
}

/** `metric{a="x", b=~"y"}` selectors: the metric and the label names matched. */
function selectors(expr: string): { metric: string; labels: string[] }[] {
  return [...expr.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}/g)].map((m) => ({
    metric: m[1],
    labels: [...m[2].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)/g)].map((l) => l[1]),
  }));
}

/** Labels of `by (...)` clauses. */
function groupingLabels(expr: string): string[] {
  return [...expr.matchAll(/\bby\s*\(([^)]*)\)/g)].flatMap((m) =>
    m[1]
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  );
}

function balanced(expr: string): boolean {
  let depth = 0;
  for (const c of expr.replace(/"(?:[^"\\]|\\.)*"/g, '""')) {
    if ('({['.includes(c)) depth++;
    if (')}]'.includes(c) && --depth < 0) return false;
  }
  return depth === 0;
}

interface Rule {
  alert?: string;
  record?: string;
  expr?: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface RuleFile {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  spec: { groups: { name: string; rules: Rule[] }[] };
}
interface DashboardPanel {
  id: number;
  type: string;
  title: string;
  gridPos?: { h: number; w: number; x: number; y: number };
  datasource?: { uid?: string };
  targets?: { expr: string; refId: string }[];
  panels?: DashboardPanel[];
}

const ruleFile = parseDocument(readFileSync(join(Monitoring, 'prometheus-rules.yaml'), 'utf8')).toJS() as RuleFile;
const rules = ruleFile.spec.groups.flatMap((g) => g.rules);
const dashboard = JSON.parse(readFileSync(join(Deploy, 'grafana', 'mesh-dashboard.json'), 'utf8')) as { uid: string; title: string; panels: DashboardPanel[] };
const panels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
const queries = panels.flatMap((p) => (p.targets ?? []).map((t) => ({ where: `dashboard panel '${p.title}' ${t.refId}`, expr: t.expr })));
const expressions = [...rules.map((r) => ({ where: `alert ${r.alert}`, expr: r.expr ?? '' })), ...queries];

// ---------------------------------------------------------------------------

describe('alert rules and dashboard against what the services serve on /metrics', () => {
  let server: NatsServer;
  let dir: string;
  let mesh: Record<ServiceName, ServiceProcess> | undefined;
  const scrapes = new Map<ServiceName, Exposition>();

  async function scrape(p: ServiceProcess): Promise<Exposition> {
    const res = await fetch(`${p.url}/metrics`);
    if (res.status !== 200) throw new Error(`GET ${p.name} /metrics answered ${res.status}`);
    return parsePrometheusText(await res.text());
  }
  const total = (m: Exposition, name: string) => m.series(name).reduce((n, s) => n + s.value, 0);

  beforeAll(async () => {
    // Handlers that dead-letter ('boom') and retry ('later'), so those counters have series too.
    dir = mkdtempSync(join(tmpdir(), 'mesh-monitoring-'));
    writeFileSync(
      join(dir, 'failures.js'),
      `module.exports = [
  { name: 'boom', types: ['boom.happened'], handle() { throw new Error('boom'); } },
  { name: 'later', types: ['later.please'], retry: { maxAttempts: 2, initialDelayMs: 50, multiplier: 1, jitter: 0, maxDelayMs: 50 },
    handle(event, ctx) { if (ctx.attempt === 1) { const e = new Error('not yet'); e.retryable = true; throw e; } return []; } },
];\n`,
    );
    server = await startNatsServer();
    mesh = await startMesh(server.url, { MESH_HANDLER_MODULES: join(dir, 'failures.js') });
    const odd = (type: string, id: string): CloudEvent => ({ specversion: '1.0', id, source: 'test://monitoring', type, partitionkey: 'k1', data: {} });
    await postEvents(
      mesh.ingest.url,
      [...Array.from({ length: 40 }, (_, n) => orderEvent(`k${n % 8}`, n, 1)), odd('boom.happened', 'b1'), odd('later.please', 'l1')],
      'batch',
    );
    const done = await eventually(
      async () => {
        const [processor, aggregator] = await Promise.all([scrape(mesh!.processor), scrape(mesh!.aggregator)]);
        return (
          total(processor, 'mesh_dead_letters_total') >= 1 &&
          total(processor, 'mesh_handler_retries_total') >= 1 &&
          total(aggregator, 'mesh_events_in_total') >= 40
        );
      },
      30_000,
      200,
    );
    if (!done) throw new Error('the mesh did not process the 42 events (a dead letter, a retry) within 30 s');
    for (const p of Object.values(mesh)) scrapes.set(p.name, await scrape(p));
  }, 90_000);

  afterAll(async () => {
    await stopAll(Object.values(mesh ?? {}));
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Sample names (histograms as _bucket, _sum, _count) of every service, and the labels seen on each. */
  function served(): Map<string, Set<string>> {
    const names = new Map<string, Set<string>>();
    for (const m of scrapes.values()) {
      for (const s of m.samples) {
        const labels = names.get(s.name) ?? new Set<string>();
        for (const l of Object.keys(s.labels)) labels.add(l);
        names.set(s.name, labels);
      }
    }
    return names;
  }

  it('finds metric names in every expression (the parser is not blind)', () => {
    expect(expressions.length).toBeGreaterThan(20);
    for (const { where, expr } of expressions) expect({ where, names: metricNames(expr).length > 0 }).toEqual({ where, names: true });
    expect(metricNames('sum by (stage) (rate(mesh_events_in_total{namespace=~"$namespace"}[5m])) / 2 > 0.5 unless x offset 10m')).toEqual([
      'mesh_events_in_total',
      'x',
    ]);
  });

  it('uses only metrics the services serve (or Prometheus and the kubelet provide)', () => {
    const names = served();
    // Every mesh instrument is in the scrape: the load above reached them all.
    for (const family of ['mesh_partition_losses_total', 'mesh_nats_permission_violations_total', 'mesh_redeliveries_total', 'mesh_consumer_lag']) {
      expect([family, names.has(family)]).toEqual([family, true]);
    }
    const unknown = expressions.flatMap(({ where, expr }) =>
      metricNames(expr)
        .filter((n) => !names.has(n) && !NotFromServices.has(n))
        .map((n) => `${where}: ${n}`),
    );
    expect(unknown).toEqual([]);
  });

  it('matches and groups by labels those metrics carry', () => {
    const names = served();
    const allLabels = new Set([...names.values()].flatMap((s) => [...s]));
    const bad: string[] = [];
    for (const { where, expr } of expressions) {
      for (const { metric, labels } of selectors(expr)) {
        if (NotFromServices.has(metric)) continue;
        for (const l of labels) if (!TargetLabels.has(l) && !names.get(metric)?.has(l)) bad.push(`${where}: ${metric}{${l}}`);
      }
      for (const l of groupingLabels(expr)) if (!TargetLabels.has(l) && !allLabels.has(l)) bad.push(`${where}: by (${l})`);
    }
    expect(bad).toEqual([]);
  });
});

describe('deploy/k8s/monitoring/prometheus-rules.yaml', () => {
  it('is a PrometheusRule of named groups of alerts, each with expr, for, severity, summary and description', () => {
    expect(ruleFile.apiVersion).toBe('monitoring.coreos.com/v1');
    expect(ruleFile.kind).toBe('PrometheusRule');
    expect(ruleFile.spec.groups.length).toBeGreaterThan(0);
    for (const g of ruleFile.spec.groups) {
      expect(g.name).toMatch(/^[a-z0-9-]+$/);
      expect(g.rules.length).toBeGreaterThan(0);
    }
    const names = rules.map((r) => r.alert);
    expect(new Set(names).size).toBe(names.length);
    for (const r of rules) {
      const where = `alert ${r.alert}`;
      expect({ where, keys: Object.keys(r).filter((k) => !['alert', 'expr', 'for', 'labels', 'annotations'].includes(k)) }).toEqual({ where, keys: [] });
      expect(r.alert).toMatch(/^Mesh[A-Z][A-Za-z]+$/);
      expect({ where, balanced: typeof r.expr === 'string' && r.expr.trim() !== '' && balanced(r.expr) }).toEqual({ where, balanced: true });
      if (r.for !== undefined) expect(r.for).toMatch(/^\d+[smh]$/);
      expect(['critical', 'warning', 'info']).toContain(r.labels?.severity);
      expect(r.annotations?.summary).toEqual(expect.any(String));
      expect(r.annotations?.description).toEqual(expect.any(String));
    }
  });

  it('alerts on lag, unowned partitions, lost leases, dead letters, ingest 5xx and permission violations', () => {
    const uses = (metric: string) => rules.filter((r) => metricNames(r.expr ?? '').includes(metric)).map((r) => r.alert);
    expect(uses('mesh_consumer_lag').length).toBeGreaterThanOrEqual(2);
    expect(uses('mesh_owned_partitions')).toHaveLength(1);
    expect(uses('mesh_partition_losses_total')).toHaveLength(1);
    expect(uses('mesh_dead_letters_total')).toHaveLength(1);
    expect(rules.find((r) => r.alert === 'MeshIngestErrors')?.expr).toMatch(/mesh_ingest_requests_total\{status=~"5\.\."\}/);
    expect(uses('mesh_nats_permission_violations_total')).toHaveLength(1);
  });

  it('counts partitions against the MESH_PARTITIONS of mesh-config.yaml', () => {
    const config = parseDocument(readFileSync(join(Deploy, 'k8s', 'mesh-config.yaml'), 'utf8')).toJS() as { data: Record<string, string> };
    const owned = rules.find((r) => r.alert === 'MeshPartitionsUnowned')!;
    expect(owned.expr).toMatch(new RegExp(`\\(mesh_owned_partitions\\) < ${config.data.MESH_PARTITIONS}\\s*$`));
  });
});

describe('deploy/k8s/monitoring/servicemonitor.yaml', () => {
  interface K8sObject {
    kind: string;
    metadata: { name: string; labels?: Record<string, string> };
    spec?: Record<string, unknown>;
  }
  const k8s = readdirSync(join(Deploy, 'k8s'))
    .filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml' && f !== 'nats-helm-values.yaml')
    .flatMap((f) => parseAllDocuments(readFileSync(join(Deploy, 'k8s', f), 'utf8')).map((d) => d.toJS() as K8sObject))
    .filter(Boolean);
  const monitor = parseDocument(readFileSync(join(Monitoring, 'servicemonitor.yaml'), 'utf8')).toJS() as {
    kind: string;
    spec: {
      namespaceSelector: { matchNames: string[] };
      selector: { matchLabels?: Record<string, string>; matchExpressions?: { key: string; operator: string; values: string[] }[] };
      endpoints: { port: string; path: string }[];
    };
  };

  function selected(labels: Record<string, string> = {}): boolean {
    const { matchLabels = {}, matchExpressions = [] } = monitor.spec.selector;
    return (
      Object.entries(matchLabels).every(([k, v]) => labels[k] === v) &&
      matchExpressions.every((e) =>
        e.operator === 'In' ? e.values.includes(labels[e.key]) : e.operator === 'NotIn' ? !e.values.includes(labels[e.key]) : false,
      )
    );
  }

  it('selects, in namespace mesh, a Service of each of the four services, and nothing else', () => {
    expect(monitor.kind).toBe('ServiceMonitor');
    expect(monitor.spec.namespaceSelector.matchNames).toEqual(['mesh']);
    const services = k8s.filter((o) => o.kind === 'Service' && selected(o.metadata.labels));
    expect(services.map((s) => s.metadata.name).sort()).toEqual([...Services].sort());
  });

  it.each(Services)('scrapes /metrics of %s on the named port that reaches its HTTP_PORT', (name) => {
    const [endpoint] = monitor.spec.endpoints;
    expect(monitor.spec.endpoints).toHaveLength(1);
    expect(endpoint.path).toBe('/metrics');
    const service = k8s.find((o) => o.kind === 'Service' && o.metadata.name === name)!;
    const port = (service.spec!.ports as { name?: string; targetPort: string | number }[]).find((p) => p.name === endpoint.port);
    expect(port).toBeDefined();
    const deployment = k8s.find((o) => o.kind === 'Deployment' && o.metadata.name === name)!;
    const container = (
      deployment.spec as { template: { spec: { containers: { ports: { name: string; containerPort: number }[]; env: { name: string; value?: string }[] }[] } } }
    ).template.spec.containers[0];
    const containerPort = typeof port!.targetPort === 'number' ? port!.targetPort : container.ports.find((p) => p.name === port!.targetPort)?.containerPort;
    expect(String(containerPort)).toBe(container.env.find((e) => e.name === 'HTTP_PORT')?.value);
  });

  it('is applied with the rules by deploy/k8s/monitoring, not by the default kustomization', () => {
    const own = parseDocument(readFileSync(join(Monitoring, 'kustomization.yaml'), 'utf8')).toJS() as { namespace: string; resources: string[] };
    expect(own.namespace).toBe('mesh');
    expect(own.resources.sort()).toEqual(['prometheus-rules.yaml', 'servicemonitor.yaml']);
    const main = parseDocument(readFileSync(join(Deploy, 'k8s', 'kustomization.yaml'), 'utf8')).toJS() as { resources: string[] };
    expect(main.resources.filter((r) => r.includes('monitoring'))).toEqual([]);
  });
});

describe('deploy/grafana/mesh-dashboard.json', () => {
  it('queries a chosen Prometheus data source in every panel, with unique ids and a place on the grid', () => {
    expect(dashboard.uid).toBe('nats-event-mesh');
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of panels) {
      expect(p.gridPos).toEqual({ h: expect.any(Number), w: expect.any(Number), x: expect.any(Number), y: expect.any(Number) });
      if (p.type === 'row') continue;
      expect({ panel: p.title, datasource: p.datasource?.uid, targets: (p.targets ?? []).length > 0 }).toEqual({
        panel: p.title,
        datasource: '${datasource}',
        targets: true,
      });
      for (const t of p.targets ?? []) expect({ panel: p.title, balanced: balanced(t.expr) }).toEqual({ panel: p.title, balanced: true });
    }
  });

  it('shows throughput, lag, processing time, dead letters, retries, ownership, ingest status and resources', () => {
    const used = new Set(queries.flatMap((q) => metricNames(q.expr)));
    for (const m of [
      'mesh_events_in_total',
      'mesh_events_out_total',
      'mesh_consumer_lag',
      'mesh_processing_duration_seconds_bucket',
      'mesh_dead_letters_total',
      'mesh_handler_retries_total',
      'mesh_owned_partitions',
      'mesh_ingest_requests_total',
      'container_memory_working_set_bytes',
      'container_cpu_usage_seconds_total',
    ]) {
      expect([m, used.has(m)]).toEqual([m, true]);
    }
  });
});
