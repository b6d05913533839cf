export { startTelemetry } from './start-telemetry';
export { injectTraceparent, contextFromTraceparent, injectTraceHeaders, contextFromTraceHeaders } from './propagation';
export { startConsumerSpan, startProducerSpan, recordFailure, TracerName } from './messaging-spans';
export { activeTraceIds } from './trace-ids';
export { createMetrics, PrometheusContentType, MeterName } from './create-metrics';
export { DurationBucketsSeconds, BatchSizeBuckets } from './mesh-instruments';
export { startDiscovery, controlSubjects, ServiceApiPrefix, ServiceResponseType, ServiceErrorHeader, ServiceErrorCodeHeader } from './discovery';
export { DiscoveryOptionError } from './errors';
export type {
  ServiceIdentity,
  Telemetry,
  TraceContextFields,
  TraceHeaderCarrier,
  MessagingOperation,
  MessagingSpanOptions,
  TraceIds,
  StageAttributes,
  StageHandlerAttributes,
  StagePartitionAttributes,
  IngestStatusAttributes,
  MeshInstruments,
  MetricsRegistry,
  DiscoveryEndpoint,
  DiscoveryEndpointStats,
  DiscoveryOptions,
  Discovery,
} from './types';
