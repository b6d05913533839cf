/** Version of the mesh, reported by service discovery and telemetry. */
export const MeshVersion = '0.1.0';

/**
 * Stream, bucket and consumer names: the JetStream layout of the mesh.
 * Every service and tool takes these names from here; none spells them by hand.
 */

export const Streams = {
  ingest: 'MESH_INGEST',
  routed: 'MESH_ROUTED',
  processed: 'MESH_PROCESSED',
  aggregates: 'MESH_AGGREGATES',
  dlq: 'MESH_DLQ',
} as const;
export type StreamName = (typeof Streams)[keyof typeof Streams];

export const Buckets = {
  aggregates: 'mesh_aggregates',
  checkpoints: 'mesh_checkpoints',
  members: 'mesh_members',
  leases: 'mesh_leases',
  routes: 'mesh_routes',
} as const;

/** The stages that consume a stream partition by partition. */
export const Stages = ['router', 'processor', 'aggregator'] as const;
export type Stage = (typeof Stages)[number];
/** Every place an event can be dead-lettered from. */
export type DlqStage = Stage | 'ingest';

/** The stream each stage consumes. */
export const StageInput: Record<Stage, StreamName> = {
  router: Streams.ingest,
  processor: Streams.routed,
  aggregator: Streams.processed,
};

/** Durable consumer of one stage on one partition: `router-p03`. */
export function consumerName(stage: Stage, partition: number): string {
  return `${stage}-p${String(partition).padStart(2, '0')}`;
}

/**
 * Durable consumer of the sink on the stream behind `mesh_aggregates`
 * (`KV_mesh_aggregates`): every result the aggregator writes, in order.
 */
export const SinkConsumer = 'sink';

/** Key in `mesh_checkpoints` that records the partition count fixed at provisioning. */
export const PartitionCountKey = 'mesh.partitions';

/** Prefix of every key a stage writes in `mesh_checkpoints`. */
export function checkpointPrefix(stage: Stage): string {
  return `${stage}.`;
}

/** Key in `mesh_checkpoints` holding one stage's state for one partition. */
export function checkpointKey(stage: Stage, partition: number): string {
  return `${checkpointPrefix(stage)}p${String(partition).padStart(2, '0')}`;
}

/**
 * Prefix of the keys in `mesh_checkpoints` that record the processor's split
 * envelopes of one partition (events waiting for a retry): `processor.p03.retry.<seq>`.
 */
export function retryRecordPrefix(partition: number): string {
  return `${checkpointKey('processor', partition)}.retry.`;
}

/**
 * Prefix of the keys in `mesh_checkpoints` holding the handler state
 * (`ctx.state`) of one partition of a service that hosts handlers:
 * `processor.p03.state.<handler>.<key>`. `service` is the stage name of that
 * service (its checkpoint prefix), `processor` for the processor.
 */
export function handlerStatePrefix(partition: number, service: string = 'processor'): string {
  return `${service}.p${String(partition).padStart(2, '0')}.state.`;
}

/**
 * Key prefixes in `mesh_routes`: `handler.<name>` is written by the service
 * hosting the handler (its declared types), `rule.<name>` by operators.
 */
export const RouteKeyPrefix = {
  handler: 'handler.',
  rule: 'rule.',
} as const;
