/** The mesh's instruments, defined once with their names, units and buckets. */
import type { Meter } from '@opentelemetry/api';
import type {
  IngestStatusAttributes,
  NatsPermissionAttributes,
  MeshInstruments,
  StageAttributes,
  StageHandlerAttributes,
  StagePartitionAttributes,
} from './types';

/** Seconds, from 1 ms to 30 s: a batch step or an ingest request (store included). */
export const DurationBucketsSeconds = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Events per batch, up to the default envelope limit (500) and beyond. */
export const BatchSizeBuckets = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500];

/**
 * Counters are named without `_total`: the Prometheus serializer appends it
 * to monotonic sums, and OTLP back ends expect OpenTelemetry names without it.
 */
export function createMeshInstruments(meter: Meter): MeshInstruments {
  return {
    eventsIn: meter.createCounter<StageHandlerAttributes>('mesh_events_in', {
      description: 'Events taken from the stage input.',
      unit: '{event}',
    }),
    eventsOut: meter.createCounter<StageHandlerAttributes>('mesh_events_out', {
      description: 'Events the stage published and JetStream stored.',
      unit: '{event}',
    }),
    processingDuration: meter.createHistogram<StageAttributes>('mesh_processing_duration_seconds', {
      description: 'Time to work one batch, from fetch to ack.',
      unit: 's',
      advice: { explicitBucketBoundaries: DurationBucketsSeconds },
    }),
    batchSize: meter.createHistogram<StageAttributes>('mesh_batch_size', {
      description: 'Events per batch worked in one step.',
      unit: '{event}',
      advice: { explicitBucketBoundaries: BatchSizeBuckets },
    }),
    consumerLag: meter.createObservableGauge<StagePartitionAttributes>('mesh_consumer_lag', {
      description: 'Messages not yet delivered to the partition consumer (num_pending).',
      unit: '{message}',
    }),
    redeliveries: meter.createCounter<StageAttributes>('mesh_redeliveries', {
      description: 'Input messages delivered more than once.',
      unit: '{message}',
    }),
    deadLetters: meter.createCounter<StageHandlerAttributes>('mesh_dead_letters', {
      description: 'Events sent to the dead-letter stream MESH_DLQ.',
      unit: '{event}',
    }),
    handlerRetries: meter.createCounter<StageHandlerAttributes>('mesh_handler_retries', {
      description: 'Handler attempts that failed with a retryable error and were put off for a later attempt.',
      unit: '{attempt}',
    }),
    partitionLosses: meter.createCounter<StageAttributes>('mesh_partition_losses', {
      description: 'Partitions this instance stopped at once because their lease lapsed or was taken (not a release).',
      unit: '{partition}',
    }),
    ownedPartitions: meter.createObservableGauge<StageAttributes>('mesh_owned_partitions', {
      description: 'Partitions whose lease this instance holds.',
      unit: '{partition}',
    }),
    ingestRequests: meter.createCounter<IngestStatusAttributes>('mesh_ingest_requests', {
      description: 'Ingest requests (HTTP and NATS) by answered status.',
      unit: '{request}',
    }),
    ingestRequestDuration: meter.createHistogram<Record<string, never>>('mesh_ingest_request_duration_seconds', {
      description: 'Time from an ingest request to its answer.',
      unit: 's',
      advice: { explicitBucketBoundaries: DurationBucketsSeconds },
    }),
    natsPermissionViolations: meter.createCounter<NatsPermissionAttributes>('mesh_nats_permission_violations', {
      description: 'Publishes and subscriptions the NATS server refused for lack of permission (the subject is in the log).',
      unit: '{violation}',
    }),
  };
}
