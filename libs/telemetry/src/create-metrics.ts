/**
 * A service's metrics registry: an OpenTelemetry MeterProvider whose only
 * reader is collected on demand and rendered as Prometheus text for
 * GET /metrics.
 */
import { diag } from '@opentelemetry/api';
import { PrometheusExporter, PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import { RuntimeNodeInstrumentation } from '@opentelemetry/instrumentation-runtime-node';
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { createMeshInstruments } from './mesh-instruments';
import { ATTR_SERVICE_INSTANCE_ID, ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from './semconv';
import type { MetricsRegistry, ServiceIdentity } from './types';

/** Content type to answer GET /metrics with. */
export const PrometheusContentType = 'text/plain; version=0.0.4; charset=utf-8';

export const MeterName = '@mesh/telemetry';

/**
 * Creates the registry. `identity` (instance id, version) only adds labels to
 * the `target_info` series. The provider is not registered globally, so
 * several registries can live side by side (tests) and a service's metrics do
 * not depend on startTelemetry.
 */
export function createMetrics(serviceName: string, identity: Partial<Omit<ServiceIdentity, 'serviceName'>> = {}): MetricsRegistry {
  // The exporter is used as a pull reader only: its HTTP server never starts;
  // the service's own HTTP app serves the text. It reads cumulative values,
  // as Prometheus expects.
  const reader = new PrometheusExporter({ preventServerStart: true });
  // Scope labels (otel_scope_name=...) would be the same on every series of
  // this one meter, so they are left out; target_info carries the service.
  const serializer = new PrometheusSerializer(undefined, false, undefined, false, true);
  const provider = new MeterProvider({
    resource: defaultResource().merge(
      resourceFromAttributes({
        [ATTR_SERVICE_NAME]: serviceName,
        ...(identity.instanceId !== undefined ? { [ATTR_SERVICE_INSTANCE_ID]: identity.instanceId } : {}),
        ...(identity.version !== undefined ? { [ATTR_SERVICE_VERSION]: identity.version } : {}),
      }),
    ),
    readers: [reader],
  });
  const meter = provider.getMeter(MeterName);
  // Node's own health beside the mesh's: event-loop delay and utilization,
  // heap spaces, GC durations (nodejs_eventloop_*, v8js_*), on this registry.
  const runtime = new RuntimeNodeInstrumentation({ enabled: false });
  runtime.setMeterProvider(provider);
  runtime.enable();

  return {
    ...createMeshInstruments(meter),
    meter,
    async renderPrometheus() {
      const { resourceMetrics, errors } = await reader.collect();
      // A failing observable callback loses its own series, not the scrape.
      for (const err of errors) diag.warn('metrics: collecting a metric failed', err);
      return serializer.serialize(resourceMetrics);
    },
    shutdown() {
      runtime.disable();
      return provider.shutdown();
    },
  };
}
