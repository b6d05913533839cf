/**
 * GET /metrics of every service after a known load: 300 order events (single,
 * batch and NDJSON requests), one invalid request and one event whose
 * handler always throws. The Prometheus text is parsed, and each stage's
 * counters must equal what was sent.
 */
import type { CloudEvent } from '@mesh/contracts';
import {
  encodeRequest,
  eventually,
  orderEvent,
  postEvents,
  startMesh,
  startNatsServer,
  stopAll,
  type NatsServer,
  type ServiceName,
  type ServiceProcess,
} from '@mesh/testing';
import { FailingEventType, FailingHandlerName, writeFailingHandler, type HandlerModule } from './support/failing-handler';
import { waitUntilDrained } from './support/mesh-state';
import { parsePrometheusText, type Exposition } from './support/prometheus-text';

const PARTITIONS = 16;
const ORDERS = 300;
const KEYS = 30;
const STAGES = ['router', 'processor', 'aggregator'] as const;

async function scrape(p: ServiceProcess): Promise<{ contentType: string; metrics: Exposition }> {
  const res = await fetch(`${p.url}/metrics`);
  if (res.status !== 200) throw new Error(`GET ${p.name} /metrics answered ${res.status}`);
  return { contentType: res.headers.get('content-type') ?? '', metrics: parsePrometheusText(await res.text()) };
}

/** A histogram family: _bucket series with cumulative counts ending at le="+Inf", _sum and _count. */
function expectHistogram(m: Exposition, name: string, labels: Record<string, string> = {}): { count: number; sum: number } {
  expect(m.types.get(name)).toBe('histogram');
  const buckets = m.series(`${name}_bucket`, labels);
  expect(buckets.length).toBeGreaterThan(1);
  expect(buckets[buckets.length - 1].labels.le).toBe('+Inf');
  const bounds = buckets.map((b) => (b.labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(b.labels.le)));
  expect(bounds).toEqual([...bounds].sort((a, b) => a - b));
  const counts = buckets.map((b) => b.value);
  expect(counts).toEqual([...counts].sort((a, b) => a - b));
  const count = m.value(`${name}_count`, labels);
  const sum = m.value(`${name}_sum`, labels);
  expect(counts[counts.length - 1]).toBe(count);
  return { count, sum };
}

describe('Prometheus metrics of every service', () => {
  let server: NatsServer;
  let handler: HandlerModule;
  let mesh: Record<ServiceName, ServiceProcess> | undefined;
  const scraped = new Map<ServiceName, { contentType: string; metrics: Exposition }>();

  beforeAll(async () => {
    server = await startNatsServer();
    handler = writeFailingHandler();
    mesh = await startMesh(server.url, { MESH_HANDLER_MODULES: handler.path });

    // 300 orders over 30 keys: 30 single requests, then 27 batch or NDJSON requests of 10.
    const orders = Array.from({ length: ORDERS }, (_, n) => orderEvent(`m${n % KEYS}`, n, (n % 7) + 1));
    await Promise.all(orders.slice(0, 30).map((e) => postEvents(mesh!.ingest.url, [e], 'single')));
    const rest: Promise<void>[] = [];
    for (let n = 30, i = 0; n < ORDERS; n += 10, i++) rest.push(postEvents(mesh.ingest.url, orders.slice(n, n + 10), i % 2 === 0 ? 'batch' : 'ndjson'));
    await Promise.all(rest);
    const boom: CloudEvent = { specversion: '1.0', id: 'boom-1', source: 'test://metrics', type: FailingEventType, partitionkey: 'm0', data: {} };
    await postEvents(mesh.ingest.url, [boom], 'single');
    // An invalid request: no `source`.
    const invalid = encodeRequest([{ ...orderEvent('m1', 9999, 1), source: '' }], 'single');
    const res = await fetch(`${mesh.ingest.url}/v1/events`, { method: 'POST', headers: { 'content-type': invalid.contentType }, body: invalid.body });
    await res.text();
    expect(res.status).toBe(400);

    // Done when every stage took all it should and the failing event was dead-lettered.
    const total = (m: Exposition, name: string, labels: Record<string, string>) => m.series(name, labels).reduce((n, s) => n + s.value, 0);
    const done = await eventually(
      async () => {
        const [router, processor, aggregator] = await Promise.all([scrape(mesh!.router), scrape(mesh!.processor), scrape(mesh!.aggregator)]);
        return (
          total(router.metrics, 'mesh_events_in_total', { stage: 'router' }) >= ORDERS + 1 &&
          total(processor.metrics, 'mesh_events_in_total', { stage: 'processor' }) >= ORDERS + 1 &&
          total(processor.metrics, 'mesh_dead_letters_total', { stage: 'processor' }) >= 1 &&
          total(aggregator.metrics, 'mesh_events_in_total', { stage: 'aggregator' }) >= ORDERS
        );
      },
      30_000,
      200,
    );
    expect(done).toBe(true);
    // Every input of every stage acked too: nothing is left to deliver or to
    // deliver again, so nothing more can be counted (a batch is counted after
    // its acks are sent, and it was counted already: the counts reached).
    await waitUntilDrained(server.url, PARTITIONS, 30_000);
    for (const p of Object.values(mesh)) scraped.set(p.name, await scrape(p));
  }, 90_000);

  afterAll(async () => {
    if (mesh) await stopAll(Object.values(mesh));
    await server?.stop();
    handler?.remove();
  }, 60_000);

  it('answers GET /metrics as Prometheus text format 0.0.4', () => {
    for (const name of ['ingest', 'router', 'processor', 'aggregator'] as const) {
      const { contentType } = scraped.get(name)!;
      expect(contentType.split(';')[0].trim()).toBe('text/plain');
      expect(contentType.replace(/\s/g, '')).toContain('version=0.0.4');
    }
  });

  it('counts ingest requests by status and times them in a histogram', () => {
    const m = scraped.get('ingest')!.metrics;
    expect(m.types.get('mesh_ingest_requests_total')).toBe('counter');
    // 30 single + 27 batch/NDJSON + 1 failing-handler request accepted; one invalid.
    expect(m.value('mesh_ingest_requests_total', { status: '202' })).toBe(58);
    expect(m.value('mesh_ingest_requests_total', { status: '400' })).toBe(1);
    const requests = m.series('mesh_ingest_requests_total').reduce((n, s) => n + s.value, 0);
    const { count, sum } = expectHistogram(m, 'mesh_ingest_request_duration_seconds');
    expect(count).toBe(requests);
    expect(sum).toBeGreaterThan(0);
  });

  it("counts each stage's input events exactly", () => {
    expect(scraped.get('router')!.metrics.value('mesh_events_in_total', { stage: 'router' })).toBe(ORDERS + 1);
    expect(scraped.get('processor')!.metrics.value('mesh_events_in_total', { stage: 'processor' })).toBe(ORDERS + 1);
    // The failing event never leaves the processor.
    expect(scraped.get('aggregator')!.metrics.value('mesh_events_in_total', { stage: 'aggregator' })).toBe(ORDERS);
  });

  it("counts ingest's stored events, the router output by route and the processor output by handler", () => {
    // Every order and the failing event were stored; the invalid request stored nothing.
    expect(scraped.get('ingest')!.metrics.value('mesh_events_out_total', { stage: 'ingest' })).toBe(ORDERS + 1);
    const router = scraped.get('router')!.metrics;
    expect(router.value('mesh_events_out_total', { stage: 'router', handler: 'orders' })).toBe(ORDERS);
    expect(router.value('mesh_events_out_total', { stage: 'router', handler: FailingHandlerName })).toBe(1);
    const processor = scraped.get('processor')!.metrics;
    expect(processor.types.get('mesh_events_out_total')).toBe('counter');
    expect(processor.value('mesh_events_out_total', { stage: 'processor', handler: 'orders' })).toBe(ORDERS);
    expect(processor.series('mesh_events_out_total', { stage: 'processor', handler: FailingHandlerName })).toEqual([]);
  });

  it('counts the dead letter of the failing handler once, by stage and handler', () => {
    const processor = scraped.get('processor')!.metrics;
    expect(processor.types.get('mesh_dead_letters_total')).toBe('counter');
    expect(processor.value('mesh_dead_letters_total', { stage: 'processor', handler: FailingHandlerName })).toBe(1);
    expect(processor.series('mesh_dead_letters_total').reduce((n, s) => n + s.value, 0)).toBe(1);
    expect(
      scraped
        .get('router')!
        .metrics.series('mesh_dead_letters_total')
        .reduce((n, s) => n + s.value, 0),
    ).toBe(0);
  });

  it('records batch sizes and processing time per stage: the batch sizes add up to the events taken', () => {
    for (const stage of STAGES) {
      const m = scraped.get(stage)!.metrics;
      const events = m.value('mesh_events_in_total', { stage });
      const batches = expectHistogram(m, 'mesh_batch_size', { stage });
      expect(batches.sum).toBe(events);
      expect(batches.count).toBeGreaterThan(0);
      expect(batches.count).toBeLessThanOrEqual(events);
      const time = expectHistogram(m, 'mesh_processing_duration_seconds', { stage });
      expect(time.count).toBe(batches.count);
      expect(time.sum).toBeGreaterThan(0);
    }
  });

  it('reports the 16 owned partitions and a consumer lag per partition, zero once everything is done', () => {
    for (const stage of STAGES) {
      const m = scraped.get(stage)!.metrics;
      expect(m.types.get('mesh_owned_partitions')).toBe('gauge');
      expect(m.value('mesh_owned_partitions', { stage })).toBe(PARTITIONS);
      expect(m.types.get('mesh_consumer_lag')).toBe('gauge');
      const lag = m.series('mesh_consumer_lag', { stage });
      expect(lag.map((s) => Number(s.labels.partition)).sort((a, b) => a - b)).toEqual(Array.from({ length: PARTITIONS }, (_, p) => p));
      expect(lag.map((s) => s.value)).toEqual(new Array(PARTITIONS).fill(0));
    }
  });
});
