import { createMetrics } from './create-metrics';
import type { MetricsRegistry } from './types';

/**
 * Checks the text exposition format 0.0.4: every line is a comment or a
 * sample `name{labels} value`, and every sample belongs to a family whose
 * TYPE was declared before it (histogram samples end in _bucket/_sum/_count).
 */
function expectValidExposition(text: string): void {
  const declared = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (type) {
      expect(declared.has(type[1])).toBe(false);
      declared.set(type[1], type[2]);
      continue;
    }
    if (line.startsWith('#')) {
      expect(line).toMatch(/^# (HELP|UNIT) [a-zA-Z_:][a-zA-Z0-9_:]* .+$/);
      continue;
    }
    const sample =
      /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*\})? (-?[0-9.e+-]+|[+-]Inf|NaN)$/.exec(
        line,
      );
    expect(sample).not.toBeNull();
    const name = sample![1];
    const family = declared.has(name) ? name : name.replace(/_(bucket|sum|count)$/, '');
    expect(declared.has(family)).toBe(true);
    if (family !== name) expect(declared.get(family)).toBe('histogram');
  }
}

describe('createMetrics and renderPrometheus', () => {
  let metrics: MetricsRegistry;
  beforeEach(() => {
    metrics = createMetrics('router', { instanceId: 'router-a', version: '0.1.0' });
  });
  afterEach(() => metrics.shutdown());

  it('renders a counter with labels as an exact _total line', async () => {
    metrics.eventsIn.add(3, { stage: 'router', handler: 'orders' });
    metrics.eventsIn.add(2, { stage: 'router', handler: 'orders' });
    metrics.eventsIn.add(1, { stage: 'router', handler: 'refunds' });
    metrics.deadLetters.add(1, { stage: 'processor', handler: 'orders' });
    metrics.ingestRequests.add(4, { status: 202 });

    const text = await metrics.renderPrometheus();
    const lines = text.split('\n');
    expect(lines).toContain('# TYPE mesh_events_in_total counter');
    expect(lines).toContain('mesh_events_in_total{stage="router",handler="orders"} 5');
    expect(lines).toContain('mesh_events_in_total{stage="router",handler="refunds"} 1');
    expect(lines).toContain('mesh_dead_letters_total{stage="processor",handler="orders"} 1');
    expect(lines).toContain('mesh_ingest_requests_total{status="202"} 4');
    expectValidExposition(text);
  });

  it('renders a histogram as cumulative _bucket lines with le, then _sum and _count', async () => {
    metrics.processingDuration.record(0.003, { stage: 'router' });
    metrics.processingDuration.record(0.2, { stage: 'router' });
    metrics.processingDuration.record(45, { stage: 'router' });
    metrics.batchSize.record(64, { stage: 'router' });

    const text = await metrics.renderPrometheus();
    const lines = text.split('\n');
    expect(lines).toContain('# TYPE mesh_processing_duration_seconds histogram');
    expect(lines).toContain('mesh_processing_duration_seconds_bucket{stage="router",le="0.001"} 0');
    expect(lines).toContain('mesh_processing_duration_seconds_bucket{stage="router",le="0.005"} 1');
    expect(lines).toContain('mesh_processing_duration_seconds_bucket{stage="router",le="0.25"} 2');
    expect(lines).toContain('mesh_processing_duration_seconds_bucket{stage="router",le="30"} 2');
    expect(lines).toContain('mesh_processing_duration_seconds_bucket{stage="router",le="+Inf"} 3');
    expect(lines).toContain('mesh_processing_duration_seconds_count{stage="router"} 3');
    expect(lines).toContain('mesh_processing_duration_seconds_sum{stage="router"} 45.203');
    expect(lines).toContain('mesh_batch_size_bucket{stage="router",le="50"} 0');
    expect(lines).toContain('mesh_batch_size_bucket{stage="router",le="100"} 1');
    expectValidExposition(text);
  });

  it('reads observable gauges from the callbacks the service registered, at every render', async () => {
    let lag = 7;
    metrics.consumerLag.addCallback((result) => {
      result.observe(lag, { stage: 'router', partition: 3 });
      result.observe(0, { stage: 'router', partition: 4 });
    });
    metrics.ownedPartitions.addCallback((result) => result.observe(2, { stage: 'router' }));

    let lines = (await metrics.renderPrometheus()).split('\n');
    expect(lines).toContain('# TYPE mesh_consumer_lag gauge');
    expect(lines).toContain('mesh_consumer_lag{stage="router",partition="3"} 7');
    expect(lines).toContain('mesh_consumer_lag{stage="router",partition="4"} 0');
    expect(lines).toContain('mesh_owned_partitions{stage="router"} 2');

    lag = 1;
    lines = (await metrics.renderPrometheus()).split('\n');
    expect(lines).toContain('mesh_consumer_lag{stage="router",partition="3"} 1');
  });

  it('names the service in target_info and adds no per-series scope labels', async () => {
    metrics.redeliveries.add(1, { stage: 'router' });
    metrics.ingestRequestDuration.record(0.01);
    const text = await metrics.renderPrometheus();
    expect(text).toMatch(/^target_info\{service_name="router",service_instance_id="router-a",service_version="0.1.0",.*\} 1$/m);
    expect(text).toContain('\nmesh_redeliveries_total{stage="router"} 1\n');
    expect(text).toContain('\nmesh_ingest_request_duration_seconds_count 1\n');
    expect(text).not.toContain('otel_scope');
    expectValidExposition(text);
  });

  it('keeps serving the other metrics when an observable callback throws', async () => {
    metrics.ownedPartitions.addCallback(() => {
      throw new Error('lease table unavailable');
    });
    metrics.eventsOut.add(9, { stage: 'router', handler: 'orders' });
    const lines = (await metrics.renderPrometheus()).split('\n');
    expect(lines).toContain('mesh_events_out_total{stage="router",handler="orders"} 9');
    expect(lines.some((l) => l.startsWith('mesh_owned_partitions{'))).toBe(false);
  });

  it('keeps registries apart', async () => {
    const other = createMetrics('ingest');
    try {
      other.eventsIn.add(1, { stage: 'ingest' });
      expect(await metrics.renderPrometheus()).not.toContain('mesh_events_in_total');
      expect((await other.renderPrometheus()).split('\n')).toContain('mesh_events_in_total{stage="ingest"} 1');
    } finally {
      await other.shutdown();
    }
  });
});

describe('runtime metrics of Node', () => {
  it('exposes event-loop delay, heap and GC series beside the mesh metrics', async () => {
    const metrics = createMetrics('processor');
    try {
      // The delay histogram reports once it has 5 samples (one per 10 ms).
      await new Promise((r) => setTimeout(r, 150));
      const text = await metrics.renderPrometheus();
      expect(text).toMatch(/^nodejs_eventloop_delay_p99(\{[^}]*\})? [0-9.e+-]+$/m);
      expect(text).toMatch(/^nodejs_eventloop_utilization(\{[^}]*\})? [0-9.e+-]+$/m);
      expect(text).toMatch(/^v8js_memory_heap_used\{[^}]*v8js_heap_space_name="new_space"[^}]*\} [0-9.e+-]+$/m);
      expectValidExposition(text);
    } finally {
      await metrics.shutdown();
    }
  });

  it('stops its collectors at shutdown: a later registry still renders them', async () => {
    const first = createMetrics('router');
    await first.shutdown();
    const second = createMetrics('router');
    try {
      await new Promise((r) => setTimeout(r, 150));
      const text = await second.renderPrometheus();
      expect(text).toMatch(/^nodejs_eventloop_delay_p99 [0-9.e+-]+$/m);
      expect(text).toMatch(/^nodejs_eventloop_utilization [0-9.e+-]+$/m);
    } finally {
      await second.shutdown();
    }
  });
});
