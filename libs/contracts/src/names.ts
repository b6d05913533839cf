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

/** The built-in stages that consume a stream partition by partition. */
export const Stages = ['router', 'processor', 'aggregator'] as const;
export type BuiltInStage = (typeof Stages)[number];
/**
 * A stage: `router`, `aggregator`, or a handler service (the processor is
 * one; every team's service is another), named by its service name
 * (handlerServiceNameProblem says which names are valid). A stage names its
 * consumers, checkpoint keys, leases, members and dead letters.
 */
export type Stage = string;
/** Every place an event can be dead-lettered from. */
export type DlqStage = Stage;

/** The stream each built-in stage consumes (every handler service consumes MESH_ROUTED). */
export const StageInput: Record<BuiltInStage, StreamName> = {
  router: Streams.ingest,
  processor: Streams.routed,
  aggregator: Streams.processed,
};

/** The stream a stage consumes: MESH_INGEST for the router, MESH_PROCESSED for the aggregator, MESH_ROUTED for a handler service. */
export function stageInput(stage: Stage): StreamName {
  return stage === 'router' ? Streams.ingest : stage === 'aggregator' ? Streams.processed : Streams.routed;
}

/** Whether the stage is a handler service (hosts handlers and consumes MESH_ROUTED): anything but the router and the aggregator. */
export function isHandlerService(stage: Stage): boolean {
  return stage !== 'router' && stage !== 'aggregator';
}

/**
 * Names no handler service may take: other services and tools of the mesh,
 * and first tokens of keys the mesh keeps in `mesh_checkpoints`
 * (`mesh.partitions`, `replay.epoch`), which a stage's keys would collide with.
 */
export const ReservedServiceNames: readonly string[] = [
  'router',
  'aggregator',
  'ingest',
  'sink',
  'console',
  'replay',
  'mesh',
  'admin',
  'nats',
  'dlq',
  'bench',
  'test',
];

const ServiceName = /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/;
/** Longest handler service name: it prefixes consumer names (`<name>-p15`) and KV keys. */
export const MaxServiceNameLength = 40;

/**
 * What is wrong with a handler service name, or undefined when it is valid:
 * lowercase letters and digits in words joined by '-', at most 40
 * characters, and not one of ReservedServiceNames.
 */
export function handlerServiceNameProblem(name: string): string | undefined {
  if (!ServiceName.test(name))
    return `is not a valid service name: use lowercase letters and digits in words joined by '-', such as 'refunds' or 'fraud-check'`;
  if (name.length > MaxServiceNameLength) return `is longer than ${MaxServiceNameLength} characters`;
  if (ReservedServiceNames.includes(name)) return `is taken by the mesh itself; reserved: ${ReservedServiceNames.join(', ')}`;
  return undefined;
}

/** Durable consumer of one stage on one partition: `router-p03`, `refunds-p03`. */
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
 * Prefix of the keys in `mesh_checkpoints` that record a handler service's
 * split envelopes of one partition (events waiting for a retry or for a
 * host): `processor.p03.retry.<seq>`, `refunds.p03.retry.<seq>`.
 */
export function retryRecordPrefix(partition: number, service: Stage = 'processor'): string {
  return `${checkpointKey(service, partition)}.retry.`;
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
 * hosting the handler (a HandlerRecord), `rule.<name>` by operators.
 */
export const RouteKeyPrefix = {
  handler: 'handler.',
  rule: 'rule.',
} as const;

/**
 * What `handler.<name>` in `mesh_routes` holds, written by the handler
 * service hosting it each time it starts (never deleted automatically:
 * `mesh handlers rm` removes it). `service` names the service whose
 * consumers get the handler's events; a record without one is the
 * processor's (written before handler services existed).
 */
export interface HandlerRecord {
  types: string[];
  description: string;
  service: string;
}

/** A handler record as stored, or undefined when the value is not one. */
export function parseHandlerRecord(text: string): HandlerRecord | undefined {
  try {
    const v = JSON.parse(text) as Partial<HandlerRecord>;
    if (!Array.isArray(v.types) || !v.types.every((t) => typeof t === 'string')) return undefined;
    const service = v.service === undefined ? 'processor' : v.service;
    if (typeof service !== 'string' || (service !== 'processor' && handlerServiceNameProblem(service) !== undefined)) return undefined;
    return { types: v.types, description: typeof v.description === 'string' ? v.description : '', service };
  } catch {
    return undefined;
  }
}
