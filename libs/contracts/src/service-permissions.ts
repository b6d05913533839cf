/**
 * What each service may publish and subscribe to on NATS: the least
 * privilege it runs with when it connects as its own user. `mesh
 * nats-config` writes these into nats-server.conf; anything that configures
 * NATS for the mesh takes them from here.
 *
 * The lists are what the services send, found by running them against
 * `nats-server -DV` (every PUB and SUB traced per client) through ingest,
 * routing, handler retries and dead letters, closed and late windows,
 * queries, discovery, SIGKILL and restart, and scale-out; then checked by
 * running the mesh under the generated config with no permission violation.
 *
 * What is deliberately never granted to a service:
 * - `>`, `$JS.>`, `$JS.API.>` or `$KV.>`: with the JetStream API at large a
 *   user reads and writes any KV key through the stream API, around the
 *   per-key subjects (nats-server issue 5203);
 * - creating, updating, deleting or purging a stream or bucket (the admin
 *   provisions them: `mesh provision`), with one exception below;
 * - another stage's consumers, checkpoint keys, leases or members.
 *
 * Known wider grants, each because the v3 client gives no narrower subject:
 * - KV reads of a bucket opened with `Kvm.open()` go through
 *   `$JS.API.STREAM.MSG.GET.KV_<bucket>`, whose key is in the request body:
 *   a service that reads one key of a bucket can read all of it (the
 *   processor and aggregator read `mesh_checkpoints`; stages read
 *   `mesh_leases`).
 * - KV watches and key listings create ordered consumers with random names:
 *   the grant names the filter (the service's own keys), not the consumer,
 *   so consumer info on those buckets is open to it.
 * - The router rebuilds its dedup window with an ordered consumer of random
 *   name on MESH_INGEST, so it may pull from and delete any consumer of
 *   MESH_INGEST (all of which are the router's own).
 * - The processor removes a retry record with `$JS.API.STREAM.PURGE.KV_mesh_checkpoints`
 *   (a filtered purge; the filter is in the body), so it could purge any
 *   checkpoint key. Moving retry records to a bucket of their own would close it.
 */
import { kvStream, kvSubject, JsApi } from './jetstream-api';
import {
  Buckets,
  checkpointPrefix,
  consumerName,
  PartitionCountKey,
  RouteKeyPrefix,
  SinkConsumer,
  stageInput,
  Streams,
  type Stage,
  type StreamName,
} from './names';
import { stagePartitionFilter, Subjects } from './subjects';
import { ReplayEpochKey, replayAckPrefix } from './replay';

export const MeshServices = ['ingest', 'router', 'processor', 'aggregator', 'sink', 'console'] as const;
export type MeshService = (typeof MeshServices)[number];

/** Prefix of a service's reply subjects (a handler service's too): nobody else may subscribe to its replies. */
export function serviceInboxPrefix(service: string): string {
  return `_INBOX_${service}`;
}

/**
 * The streams and buckets each service works with: what it checks at
 * start-up when it may not create them (MESH_PROVISION=false), and the only
 * ones whose info it may read.
 */
export const ServiceNeeds: Record<MeshService, { streams: readonly StreamName[]; buckets: readonly string[] }> = {
  ingest: { streams: [Streams.ingest, Streams.dlq], buckets: [Buckets.checkpoints] },
  router: { streams: [Streams.ingest, Streams.routed, Streams.dlq], buckets: [Buckets.routes, Buckets.checkpoints, Buckets.members, Buckets.leases] },
  processor: { streams: [Streams.routed, Streams.processed, Streams.dlq], buckets: [Buckets.routes, Buckets.checkpoints, Buckets.members, Buckets.leases] },
  aggregator: {
    streams: [Streams.processed, Streams.aggregates, Streams.dlq],
    buckets: [Buckets.aggregates, Buckets.checkpoints, Buckets.members, Buckets.leases],
  },
  // It reads results from the stream behind mesh_aggregates; mesh_checkpoints holds the partition count every service checks.
  sink: { streams: [], buckets: [Buckets.aggregates, Buckets.checkpoints] },
  // It shows everything: every stream's state and every bucket's keys.
  console: {
    streams: [Streams.ingest, Streams.routed, Streams.processed, Streams.aggregates, Streams.dlq],
    buckets: [Buckets.routes, Buckets.checkpoints, Buckets.members, Buckets.leases, Buckets.aggregates],
  },
};

/** What every handler service works with: the processor's needs. */
export const HandlerServiceNeeds = ServiceNeeds.processor;

/** The queue group whose members answer `mesh.in.>` requests. */
export const IngestQueueGroup = 'mesh-ingest';

export interface Grant {
  subject: string;
  /** Subscribe grants only: the subscription must be in this queue group. */
  queue?: string;
  /** Why the service needs it, for the README and for whoever audits the config. */
  why: string;
}

export interface ServicePermissions {
  /** One of MeshServices, or the name of a handler service. */
  service: string;
  publish: Grant[];
  subscribe: Grant[];
  /**
   * The service answers requests: it may publish one reply to the reply
   * subject of each message it received (nats-server `allow_responses`).
   */
  allowResponses: boolean;
}

/** Service discovery verbs the mesh answers (telemetry/discovery.ts). */
const DiscoveryVerbs = ['PING', 'INFO', 'STATS'] as const;

function common(service: string): Pick<ServicePermissions, 'publish' | 'subscribe'> {
  const checkpoints = kvStream(Buckets.checkpoints);
  const needs = (MeshServices as readonly string[]).includes(service) ? ServiceNeeds[service as MeshService] : HandlerServiceNeeds;
  return {
    publish: [
      { subject: JsApi.info, why: 'JetStream client start-up' },
      {
        subject: JsApi.directGetLast(checkpoints, kvSubject(Buckets.checkpoints, PartitionCountKey)),
        why: 'read the partition count recorded at provisioning',
      },
      ...needs.streams.map((s) => ({ subject: JsApi.streamInfo(s), why: 'check the mesh is provisioned (MESH_PROVISION=false)' })),
      ...needs.buckets.map((b) => ({ subject: JsApi.streamInfo(kvStream(b)), why: 'check the mesh is provisioned (MESH_PROVISION=false)' })),
    ],
    subscribe: [
      { subject: `${serviceInboxPrefix(service)}.>`, why: 'replies to its own requests: JetStream API, publish acks, pulled messages, KV watches' },
      ...DiscoveryVerbs.flatMap((verb) => [
        { subject: `$SRV.${verb}`, why: 'NATS service discovery' },
        { subject: `$SRV.${verb}.${service}`, why: 'NATS service discovery' },
        { subject: `$SRV.${verb}.${service}.*`, why: 'NATS service discovery' },
      ]),
    ],
  };
}

/** Membership and partition leases of a stage, in mesh_members and mesh_leases. */
function ownership(stage: Stage): Grant[] {
  return [Buckets.members, Buckets.leases]
    .flatMap((bucket) => [
      { subject: kvSubject(bucket, `${stage}.>`), why: `its own keys in ${bucket}` },
      { subject: JsApi.consumerCreate(kvStream(bucket), '*', kvSubject(bucket, `${stage}.>`)), why: `watch and list its stage's keys in ${bucket}` },
      { subject: JsApi.flowControl(kvStream(bucket)), why: `flow control of its ${bucket} watch` },
    ])
    .concat(
      { subject: JsApi.consumerInfo(kvStream(Buckets.members), '*'), why: 'list the live members (a key listing asks its consumer for pending keys)' },
      { subject: JsApi.streamMsgGet(kvStream(Buckets.leases)), why: 'take a lease that was released (create reads the deleted key)' },
    );
}

/** `mesh replay`: read and watch the replay signal, ack its phases under the stage's own keys. */
function replaySignal(stage: Stage): Grant[] {
  const checkpoints = kvStream(Buckets.checkpoints);
  const signal = kvSubject(Buckets.checkpoints, ReplayEpochKey);
  return [
    { subject: JsApi.directGetLast(checkpoints, signal), why: 'read the replay phase at start-up' },
    { subject: JsApi.consumerCreate(checkpoints, '*', signal), why: 'watch the replay phase' },
    { subject: JsApi.flowControl(checkpoints), why: 'flow control of the replay phase watch' },
    { subject: kvSubject(Buckets.checkpoints, `${replayAckPrefix(stage)}>`), why: 'ack a replay phase (its own instances only)' },
  ];
}

/** The durable consumer of each partition the stage may own, and nothing of other stages. */
function partitionConsumers(stage: Stage, partitions: number): Grant[] {
  const stream = stageInput(stage);
  return Array.from({ length: partitions }, (_, p) => {
    const consumer = consumerName(stage, p);
    return [
      { subject: JsApi.consumerInfo(stream, consumer), why: 'prepare the partition, lag' },
      { subject: JsApi.consumerCreate(stream, consumer, stagePartitionFilter(stage, p)), why: 'create or reset the partition consumer at its ack floor' },
      { subject: JsApi.consumerDelete(stream, consumer), why: 'reset the partition consumer at its ack floor' },
      { subject: JsApi.consumerNext(stream, consumer), why: 'pull the partition' },
      { subject: JsApi.ack(stream, consumer), why: 'ack, nak with delay' },
    ];
  }).flat();
}

function stage(stage: Stage, partitions: number, publish: Grant[]): ServicePermissions {
  const base = common(stage);
  return {
    service: stage,
    publish: [
      ...base.publish,
      ...partitionConsumers(stage, partitions),
      ...ownership(stage),
      ...replaySignal(stage),
      { subject: Subjects.dlqStage(stage), why: 'dead letters of its stage' },
      ...publish,
    ],
    subscribe: base.subscribe,
    allowResponses: true,
  };
}

function ingest(): ServicePermissions {
  const base = common('ingest');
  return {
    service: 'ingest',
    publish: [...base.publish, { subject: Subjects.ingestAll, why: 'store accepted events in MESH_INGEST' }],
    subscribe: [...base.subscribe, { subject: Subjects.inboundAll, queue: IngestQueueGroup, why: 'NATS requests with events, in the queue group of ingest' }],
    allowResponses: true,
  };
}

function router(partitions: number): ServicePermissions {
  const routes = kvStream(Buckets.routes);
  return stage('router', partitions, [
    { subject: Subjects.routedAll, why: 'routed envelopes to MESH_ROUTED' },
    { subject: JsApi.consumerCreate(routes, '*', kvSubject(Buckets.routes, '>')), why: 'watch the route table' },
    { subject: JsApi.flowControl(routes), why: 'flow control of the route table watch' },
    // Rebuilding the dedup window reads the partition back with an ordered consumer of random name.
    { subject: JsApi.streamInfo(Streams.ingest), why: 'dedup rebuild: ordered consumer' },
    { subject: JsApi.streamMsgGet(Streams.ingest), why: 'dedup rebuild: time of the ack floor' },
    ...Array.from({ length: partitions }, (_, p) => ({
      subject: JsApi.consumerCreate(Streams.ingest, '*', Subjects.ingestPartition(p)),
      why: 'dedup rebuild: ordered consumer on one partition',
    })),
    { subject: JsApi.consumerNext(Streams.ingest, '*'), why: 'dedup rebuild: pull the ordered consumer' },
    { subject: JsApi.consumerDelete(Streams.ingest, '*'), why: 'dedup rebuild: delete the ordered consumer' },
  ]);
}

/**
 * A handler service (the processor is one): its own consumers, leases,
 * members, checkpoint keys and dead letters, named by the service. Handler
 * records are not scoped by service (the names of its handlers are not known
 * when the config is written), so it may write any `handler.<name>`.
 */
export function handlerServicePermissions(service: string, partitions: number): ServicePermissions {
  const checkpoints = kvStream(Buckets.checkpoints);
  const routes = kvStream(Buckets.routes);
  const handlerRecords = kvSubject(Buckets.routes, `${RouteKeyPrefix.handler}>`);
  return stage(service, partitions, [
    { subject: Subjects.processedAll, why: 'handler output to MESH_PROCESSED' },
    { subject: handlerRecords, why: "declare its handlers' types in mesh_routes" },
    { subject: JsApi.directGetLast(routes, handlerRecords), why: 'read the record of a handler it does not host (its events wait while it is declared)' },
    {
      subject: JsApi.consumerCreate(routes, '*', handlerRecords),
      why: 'watch the handler records (partitions go to the instances hosting every handler of the service)',
    },
    { subject: JsApi.flowControl(routes), why: 'flow control of the handler records watch' },
    { subject: kvSubject(Buckets.checkpoints, `${checkpointPrefix(service)}>`), why: 'its retry records (and state) in mesh_checkpoints' },
    { subject: JsApi.streamInfo(checkpoints), why: 'list the retry records of a partition' },
    { subject: JsApi.streamMsgGet(checkpoints), why: 'read a retry record' },
    { subject: JsApi.streamPurge(checkpoints), why: 'remove a retry record once its envelope is acked (filtered purge)' },
  ]);
}

function aggregator(partitions: number): ServicePermissions {
  const checkpoints = kvStream(Buckets.checkpoints);
  const ownKeys = kvSubject(Buckets.checkpoints, `${checkpointPrefix('aggregator')}>`);
  return stage('aggregator', partitions, [
    { subject: Subjects.aggregatesAll, why: 'closed windows and late events to MESH_AGGREGATES' },
    { subject: kvSubject(Buckets.aggregates, '>'), why: 'results in mesh_aggregates' },
    { subject: JsApi.streamMsgGet(kvStream(Buckets.aggregates)), why: 'GET /v1/aggregates/:name/:key' },
    {
      subject: JsApi.consumerCreate(kvStream(Buckets.aggregates), '*', kvSubject(Buckets.aggregates, '>')),
      why: "list the keys of an aggregation, stream a key's updates (ordered consumers)",
    },
    { subject: JsApi.consumerInfo(kvStream(Buckets.aggregates), '*'), why: 'list the keys of an aggregation' },
    { subject: JsApi.consumerDelete(kvStream(Buckets.aggregates), '*'), why: 'delete the watch of an update stream whose client went away' },
    { subject: JsApi.flowControl(kvStream(Buckets.aggregates)), why: 'flow control of key listings and update streams' },
    { subject: ownKeys, why: 'its checkpoints (head and chunks) in mesh_checkpoints' },
    { subject: JsApi.streamMsgGet(checkpoints), why: 'load a checkpoint' },
    { subject: JsApi.consumerCreate(checkpoints, '*', ownKeys), why: 'list the chunks of its checkpoint' },
    { subject: JsApi.consumerInfo(checkpoints, '*'), why: 'list the chunks of its checkpoint' },
    { subject: JsApi.flowControl(checkpoints), why: 'flow control of the chunk listing' },
  ]);
}

/**
 * The sink reads the results through its one durable consumer on the stream
 * behind mesh_aggregates (it creates that consumer if missing, as a stage
 * prepares its partition consumers) and writes nothing to NATS: no KV key,
 * no stream, no other consumer.
 */
function sink(): ServicePermissions {
  const base = common('sink');
  const results = kvStream(Buckets.aggregates);
  return {
    service: 'sink',
    publish: [
      ...base.publish,
      { subject: JsApi.consumerInfo(results, SinkConsumer), why: 'find its consumer, lag' },
      { subject: JsApi.consumerCreate(results, SinkConsumer, kvSubject(Buckets.aggregates, '>')), why: 'create its consumer of every result' },
      { subject: JsApi.consumerNext(results, SinkConsumer), why: 'pull results' },
      { subject: JsApi.ack(results, SinkConsumer), why: 'ack results once PostgreSQL committed them' },
    ],
    subscribe: base.subscribe,
    allowResponses: true,
  };
}

/** A KV bucket the console reads key by key, lists and watches (ordered consumers of random name), and never writes. */
function readBucket(bucket: string, what: string): Grant[] {
  const stream = kvStream(bucket);
  return [
    { subject: JsApi.streamMsgGet(stream), why: `read a key of ${bucket} (${what})` },
    { subject: JsApi.consumerCreate(stream, '*', kvSubject(bucket, '>')), why: `list and watch the keys of ${bucket} (${what})` },
    { subject: JsApi.consumerInfo(stream, '*'), why: `list the keys of ${bucket} (a listing asks its consumer for pending keys)` },
    { subject: JsApi.consumerDelete(stream, '*'), why: `delete the watch of ${bucket} when its page goes away` },
    { subject: JsApi.flowControl(stream), why: `flow control of the ${bucket} listings and watches` },
  ];
}

/**
 * The console reads the whole mesh and acts on it in two ways only: it
 * redrives dead letters (publishes to the stage inputs, deletes from
 * MESH_DLQ) and edits operators' route rules (`rule.>` in mesh_routes).
 * It takes no lease, acks nothing, creates no durable consumer and writes
 * no other key; its browser never sees these credentials.
 */
function consoleService(): ServicePermissions {
  const base = common('console');
  const dlq = Streams.dlq;
  return {
    service: 'console',
    publish: [
      ...base.publish,
      ...[...ServiceNeeds.console.buckets.map(kvStream), ...ServiceNeeds.console.streams].map((s) => ({
        subject: JsApi.streamInfo(s),
        why: 'stream state (messages, rates, dead letters per stage, retry records)',
      })),
      ...[Streams.ingest, Streams.routed, Streams.processed].map((s) => ({ subject: JsApi.consumerList(s), why: 'partition consumers: lag, ack floor' })),
      // Reading dead letters: ordered consumers of random name on MESH_DLQ, and single reads.
      { subject: JsApi.consumerCreate(dlq, '*', '>'), why: 'list dead letters (an ordered consumer with a filter)' },
      { subject: JsApi.consumerInfo(dlq, '*'), why: 'list dead letters: how many match' },
      { subject: JsApi.consumerNext(dlq, '*'), why: 'list dead letters: pull them' },
      { subject: JsApi.consumerDelete(dlq, '*'), why: 'list dead letters: delete the listing consumer' },
      { subject: JsApi.streamMsgGet(dlq), why: 'read one dead letter' },
      // Redrive: republish to where it failed, then delete it (see redrive.ts in libs/operations).
      { subject: Subjects.ingestAll, why: 'redrive a dead letter of the router' },
      { subject: Subjects.routedAll, why: 'redrive a dead letter of a handler' },
      { subject: Subjects.processedAll, why: 'redrive a dead letter of the aggregator' },
      { subject: JsApi.streamMsgDelete(dlq), why: 'delete a redriven dead letter' },
      // Routes: read the table, write operators' rules only.
      ...readBucket(Buckets.routes, 'the route table'),
      { subject: kvSubject(Buckets.routes, `${RouteKeyPrefix.rule}>`), why: 'add, edit and delete route rules' },
      ...readBucket(Buckets.members, 'live instances'),
      ...readBucket(Buckets.leases, 'partition owners'),
      ...readBucket(Buckets.aggregates, 'an aggregation key, watched live'),
      { subject: JsApi.streamMsgGet(kvStream(Buckets.checkpoints)), why: 'read the partition count' },
      { subject: '$SRV.PING', why: 'NATS service discovery: find every instance' },
      { subject: '$SRV.STATS', why: "NATS service discovery: every instance's counts" },
    ],
    subscribe: [
      ...base.subscribe,
      // Tailing a stage's subjects as `nats sub` does: core subscriptions, nothing created on the server.
      { subject: Subjects.ingestAll, why: 'tail events on MESH_INGEST' },
      { subject: Subjects.routedAll, why: 'tail events on MESH_ROUTED' },
      { subject: Subjects.processedAll, why: 'tail events on MESH_PROCESSED' },
      { subject: Subjects.aggregatesAll, why: 'tail closed windows on MESH_AGGREGATES' },
    ],
    allowResponses: true,
  };
}

/** The permissions of one service for a mesh of `partitions` partitions. */
export function servicePermissions(service: MeshService, partitions: number): ServicePermissions {
  switch (service) {
    case 'ingest':
      return ingest();
    case 'router':
      return router(partitions);
    case 'processor':
      return handlerServicePermissions('processor', partitions);
    case 'aggregator':
      return aggregator(partitions);
    case 'sink':
      return sink();
    case 'console':
      return consoleService();
  }
}
