/**
 * Public types of @mesh/telemetry. Everything a service passes in or gets
 * back is declared here; the implementation files keep their private types.
 */
import type { Context, Counter, Histogram, Meter, ObservableGauge } from '@opentelemetry/api';

// ---------------------------------------------------------------- tracing set-up

/** Who is emitting telemetry; becomes the resource attributes service.name, service.instance.id and service.version. */
export interface ServiceIdentity {
  serviceName: string;
  instanceId: string;
  version: string;
}

/** Returned by startTelemetry. */
export interface Telemetry {
  /**
   * Flushes spans still buffered for export, stops the exporters and puts the
   * OpenTelemetry API back to no-op (so telemetry can be started again, as
   * tests do). Never rejects: an exporter that cannot flush is reported
   * through the OpenTelemetry diagnostic logger (OTEL_LOG_LEVEL).
   */
  shutdown(): Promise<void>;
}

// ---------------------------------------------------------------- propagation

/**
 * W3C Trace Context as carried by a CloudEvent (its `traceparent` and
 * `tracestate` extension attributes) or by NATS headers. Both are absent when
 * the context had no valid span, so the result can be spread into an event
 * without adding empty attributes.
 */
export interface TraceContextFields {
  traceparent?: string;
  tracestate?: string;
}

/**
 * What the propagation helpers need of a header map. `MsgHdrs` of
 * @nats-io/nats-core fits (its `get` answers "" for a missing key).
 */
export interface TraceHeaderCarrier {
  get(key: string): string | null | undefined;
  set(key: string, value: string): void;
}

// ---------------------------------------------------------------- messaging spans

/**
 * What a messaging span is about (OpenTelemetry messaging semantic
 * conventions). `process` and `receive` make CONSUMER spans, `publish` a
 * PRODUCER span.
 */
export type MessagingOperation = 'process' | 'publish' | 'receive';

export interface MessagingSpanOptions {
  /** `messaging.system`; the mesh only speaks NATS. Default 'nats'. */
  system?: 'nats';
  /** The NATS subject (`messaging.destination.name`); also names the span: "<operation> <destination>". */
  destination: string;
  /** Default 'process' for consumer spans, 'publish' for producer spans. */
  operation?: MessagingOperation;
  /** `messaging.message.id`: the event id, or the envelope's Nats-Msg-Id. Leave out for a batch span. */
  messageId?: string;
  /** `messaging.destination.partition.id`: the mesh partition. */
  partition?: number | string;
  /** `messaging.batch.message_count`: events in the batch or envelope, when more than one message is handled. */
  batchSize?: number;
  /** `messaging.consumer.group.name`: the durable consumer (e.g. `router-p03`) or queue group. */
  consumerGroup?: string;
  /**
   * Parent context: for a consumer span, the context extracted from the
   * event's traceparent (contextFromTraceparent); for a producer span, usually
   * the active context. Default: the active context.
   */
  parent?: Context;
  /**
   * Contexts to link to, for a span that covers several events of different
   * traces (a batch). Only contexts holding a valid span context are linked.
   */
  links?: Context[];
}

// ---------------------------------------------------------------- logging

/** Ids of the active span, named as the JSON logger writes them. Empty when no valid span is active. */
export interface TraceIds {
  trace_id?: string;
  span_id?: string;
}

// ---------------------------------------------------------------- metrics

/**
 * Label sets of the mesh's instruments. `stage` is ingest, router, processor
 * or aggregator. Closed types on purpose: a label that is not listed is a
 * compile error, which keeps the series count bounded.
 */
export type StageAttributes = { stage: string };
export type StageHandlerAttributes = {
  stage: string;
  /** Handler (processor), route destination (router) or aggregation name; leave out where the stage has none (ingest). */
  handler?: string;
};
export type StagePartitionAttributes = { stage: string; partition: number | string };
/** `status`: the HTTP status answered (202, 400, 413, 415, 503); NATS requests use the same codes. */
export type IngestStatusAttributes = { status: number | string };
/** `publish` or `subscription`: what the server refused. */
export type NatsPermissionAttributes = { operation: string };

/**
 * The mesh's instruments. Counters only go up; observable gauges are read by
 * callbacks the service adds with `addCallback`, called on every scrape.
 */
export interface MeshInstruments {
  /** mesh_events_in_total{stage,handler}: events taken from a stage's input. */
  eventsIn: Counter<StageHandlerAttributes>;
  /** mesh_events_out_total{stage,handler}: events a stage published (publish acked). */
  eventsOut: Counter<StageHandlerAttributes>;
  /** mesh_processing_duration_seconds{stage}: time to work one batch, from fetch to ack. */
  processingDuration: Histogram<StageAttributes>;
  /** mesh_batch_size{stage}: events per batch worked in one step. */
  batchSize: Histogram<StageAttributes>;
  /** mesh_consumer_lag{stage,partition}: messages pending on a partition consumer (num_pending). */
  consumerLag: ObservableGauge<StagePartitionAttributes>;
  /** mesh_redeliveries_total{stage}: input messages seen again (delivery count above 1). */
  redeliveries: Counter<StageAttributes>;
  /** mesh_dead_letters_total{stage,handler}: events sent to MESH_DLQ. */
  deadLetters: Counter<StageHandlerAttributes>;
  /** mesh_handler_retries_total{stage,handler}: attempts that failed with a retryable error and were put off. */
  handlerRetries: Counter<StageHandlerAttributes>;
  /** mesh_partition_losses_total{stage}: partitions given up because their lease lapsed or was taken (a release on shutdown or rebalance is not counted). */
  partitionLosses: Counter<StageAttributes>;
  /** mesh_owned_partitions{stage}: partitions this instance holds the lease of. */
  ownedPartitions: ObservableGauge<StageAttributes>;
  /** mesh_ingest_requests_total{status}: ingest requests by answered status. */
  ingestRequests: Counter<IngestStatusAttributes>;
  /** mesh_nats_permission_violations_total{operation}: publishes and subscriptions the server refused. */
  natsPermissionViolations: Counter<NatsPermissionAttributes>;
  /** mesh_ingest_request_duration_seconds: time from request to answer. */
  ingestRequestDuration: Histogram<Record<string, never>>;
}

/**
 * A service's metrics: the mesh's instruments (`metrics.eventsIn.add(n, {
 * stage: 'router', handler })`) and their Prometheus text.
 */
export interface MetricsRegistry extends MeshInstruments {
  /** The meter behind the instruments, for a service's own extra instruments. */
  readonly meter: Meter;
  /** The Prometheus text exposition (format 0.0.4) of every instrument, collected now. */
  renderPrometheus(): Promise<string>;
  /** Stops collecting; renderPrometheus afterwards rejects. */
  shutdown(): Promise<void>;
}

// ---------------------------------------------------------------- discovery

/** One endpoint a service announces; `subject` may hold wildcards (e.g. `mesh.in.>`). */
export interface DiscoveryEndpoint {
  /** Letters, digits, '-' and '_'. */
  name: string;
  subject: string;
  /** The queue group the endpoint's subscribers share ('' when none). */
  queueGroup?: string;
  /** Free-form strings, e.g. { http: 'POST /v1/events' } for the HTTP route that does the same. */
  metadata?: Record<string, string>;
}

/** An endpoint's counters as the service keeps them; matched to an endpoint by `name`. */
export interface DiscoveryEndpointStats {
  name: string;
  numRequests: number;
  numErrors: number;
  /** Total time spent answering, in milliseconds (sent in nanoseconds, as the protocol wants). */
  processingTimeMs: number;
  /** Message of the latest error, if any. */
  lastError?: string;
  /** Anything else worth showing (JSON), sent as the endpoint's `data`. */
  data?: unknown;
}

export interface DiscoveryOptions {
  /** Service name: letters, digits, '-' and '_' (ingest, router, ...). */
  name: string;
  /** Semantic version, e.g. 0.1.0. */
  version: string;
  /** This instance's id: letters, digits, '-' and '_'. */
  id: string;
  description?: string;
  metadata?: Record<string, string>;
  endpoints: DiscoveryEndpoint[];
  /**
   * Called on each $SRV.STATS request. A throwing or rejecting callback is
   * answered with a Nats-Service-Error header and reported to onError; it
   * never stops discovery.
   */
  stats?: () => DiscoveryEndpointStats[] | Promise<DiscoveryEndpointStats[]>;
  /** Time the service started; default when startDiscovery is called. */
  started?: Date;
  /** Told about a failing stats callback or a lost subscription (log it). */
  onError?: (err: Error) => void;
}

export interface Discovery {
  /** Stops answering: drains the discovery subscriptions. */
  stop(): Promise<void>;
}
