/**
 * Starts the OpenTelemetry Node SDK for a service: traces only, configured by
 * the standard OTEL_* variables, no auto-instrumentation.
 */
import { context, diag, propagation, ProxyTracerProvider, trace } from '@opentelemetry/api';
import { getBooleanFromEnv } from '@opentelemetry/core';
import { defaultResource, resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import type { NodeSDK } from '@opentelemetry/sdk-node';
import { AlwaysOffSampler, NoopSpanProcessor } from '@opentelemetry/sdk-trace';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { ATTR_SERVICE_INSTANCE_ID, ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from './semconv';
import type { ServiceIdentity, Telemetry } from './types';

let running: { serviceName: string } | undefined;

/**
 * The one place this library looks at process.env itself. The SDK's own
 * default for an unset OTEL_TRACES_EXPORTER is `otlp`, which sends every span
 * to localhost:4318 and logs a connection error per batch when no collector
 * listens: noise on every developer's machine and in CI. Locally we want
 * 'none' unless asked. And the SDK's 'none' registers no tracer provider at
 * all, so spans would be no-ops that merely pass the incoming traceparent
 * through; we want real spans (fresh span ids, sampling decisions, trace ids
 * in log lines) that are simply not exported. So in both cases a tracer
 * provider is registered whose span processor drops ended spans, without
 * the SDK (localTracing). When spans are exported, every other OTEL_*
 * variable (endpoint, protocol, sampler, resource attributes,
 * OTEL_SDK_DISABLED) is read by the SDK.
 */
function tracesExportDisabled(): boolean {
  const exporters = (process.env.OTEL_TRACES_EXPORTER ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '' && s !== 'null');
  // Same rule as the SDK: 'none' first disables export whatever follows.
  return exporters.length === 0 || exporters[0] === 'none';
}

/** What startTelemetry starts: the Node SDK, or the lighter local tracing. */
interface TracingSdk {
  start(): void;
  shutdown(): Promise<void>;
}

/**
 * Nothing exported: a tracer provider with the W3C propagator and the
 * AsyncLocalStorage context manager, as the SDK registers them, without the
 * SDK. Loading @opentelemetry/sdk-node brings every exporter it can
 * configure (OTLP over gRPC, HTTP and protobuf, Zipkin, Prometheus): 12 MB
 * more resident memory in every service that exports nothing.
 */
function localTracing(resource: Resource): TracingSdk {
  if (getBooleanFromEnv('OTEL_SDK_DISABLED')) return { start: () => undefined, shutdown: async () => undefined };
  const provider = new NodeTracerProvider({
    resource,
    spanProcessors: [new NoopSpanProcessor()],
    // Recording spans nobody exports only costs CPU on the hot path: sample
    // nothing (trace ids still flow and reach the logs) unless a sampler is
    // asked for (OTEL_TRACES_SAMPLER, read by the provider).
    ...(process.env.OTEL_TRACES_SAMPLER ? {} : { sampler: new AlwaysOffSampler() }),
  });
  return { start: () => provider.register(), shutdown: () => provider.shutdown() };
}

/** Spans exported: the Node SDK, loaded only now, configures the exporters from OTEL_* variables. */
function exportingSdk(resource: Resource): TracingSdk {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { NodeSDK: Sdk } = require('@opentelemetry/sdk-node') as { NodeSDK: typeof NodeSDK };
  return new Sdk({ resource, instrumentations: [], metricReaders: [], logRecordProcessors: [] });
}

/**
 * Call first thing in a service's main, before anything creates spans.
 *
 * - OTEL_TRACES_EXPORTER: unset or `none` (spans made, not exported),
 *   `otlp`, `console`; OTEL_EXPORTER_OTLP_ENDPOINT and
 *   OTEL_EXPORTER_OTLP_PROTOCOL (`http/protobuf` default, `http/json`, `grpc`);
 *   OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG; OTEL_RESOURCE_ATTRIBUTES and
 *   OTEL_SERVICE_NAME override the identity given here.
 * - Metrics are not the SDK's business here: they are served on /metrics by
 *   createMetrics, so the SDK gets no metric reader (OTEL_METRICS_EXPORTER is
 *   ignored) and no log processor.
 *
 * Throws when telemetry is already running in this process.
 */
export function startTelemetry(identity: ServiceIdentity): Telemetry {
  if (running) {
    throw new Error(
      `telemetry is already started in this process (service ${running.serviceName}); call shutdown() before starting it for ${identity.serviceName}`,
    );
  }
  const resource = defaultResource().merge(
    resourceFromAttributes({
      [ATTR_SERVICE_NAME]: identity.serviceName,
      [ATTR_SERVICE_INSTANCE_ID]: identity.instanceId,
      [ATTR_SERVICE_VERSION]: identity.version,
    }),
  );
  const sdk = tracesExportDisabled() ? localTracing(resource) : exportingSdk(resource);
  sdk.start();
  running = { serviceName: identity.serviceName };

  let stopped: Promise<void> | undefined;
  return {
    shutdown() {
      stopped ??= (async () => {
        try {
          // The SDK's shutdown does not wait for exports a simple (console)
          // span processor has under way; a flush first does.
          const provider = trace.getTracerProvider();
          const delegate: object = provider instanceof ProxyTracerProvider ? provider.getDelegate() : provider;
          if ('forceFlush' in delegate && typeof delegate.forceFlush === 'function') await delegate.forceFlush();
          await sdk.shutdown();
        } catch (err) {
          diag.error('telemetry: flushing spans at shutdown failed', err);
        } finally {
          // Back to the API's no-op globals, so a later startTelemetry can register again.
          trace.disable();
          propagation.disable();
          context.disable();
          running = undefined;
        }
      })();
      return stopped;
    },
  };
}
