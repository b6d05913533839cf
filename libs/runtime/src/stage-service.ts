/**
 * What the three partition-consuming services (router, processor,
 * aggregator) share: partition ownership by leases (the owner prepares each
 * partition's durable consumer when it takes the partition),
 * the stage runner that follows it, readiness, a graceful stop that finishes
 * and releases every partition, `GET /v1/partitions`, and the pauses of
 * `mesh replay` (replay-gate.ts).
 */
import { stageInput, stageInputSubject, type Stage } from '@mesh/contracts';
import { EndpointStats } from './endpoint-stats';
import { jetstreamManager } from '@nats-io/jetstream';
import { PartitionOwnership, type OwnershipOptions } from '@mesh/messaging';
import { countPartitionLosses } from './count-partition-losses';
import { armFaultPoint } from './fault-point';
import { sendJson } from './http';
import type { CommonConfig, RunningService, ServiceContext } from './service';
import { StageRunner, type PartitionWorker, type Resume } from './stage-runner';
import { ReplayGate } from './replay-gate';

export interface StageConfig extends CommonConfig {
  consumer: { maxAckPending: number; ackWait: number; batchMessages: number };
  /** Test only (MESH_TEST_FAULT): where the process kills itself; empty in production. */
  faults: { point: string };
}

export interface StageHandle extends RunningService {
  readonly runner: StageRunner;
  readonly ownership: PartitionOwnership;
  /** Begin taking partitions. */
  start(): Promise<void>;
}

export async function createStage<C extends StageConfig>(
  ctx: ServiceContext<C>,
  stage: Stage,
  /**
   * Opens a partition for its new owner. `ensureLease` throws unless this instance still holds the lease;
   * `replay.epoch` names the outputs (epochMsgId): 0 until the mesh is first replayed.
   */
  open: (partition: number, resume: Resume, ensureLease: () => void, replay: { epoch: number }) => Promise<PartitionWorker>,
  /**
   * `advertise`: more for this instance's entry in mesh_members (a handler service's hosted handlers);
   * `eligible`: which live members partitions go to (PartitionOwnership).
   */
  options: Pick<OwnershipOptions, 'advertise' | 'eligible'> = {},
): Promise<StageHandle> {
  const { config, nc, js, log, http } = ctx;
  const jsm = await jetstreamManager(nc);
  armFaultPoint(config.faults.point, log);
  const ownership = new PartitionOwnership(nc, {
    stage,
    instanceId: config.instance.id,
    partitions: config.mesh.partitions,
    ttlMs: config.mesh.leaseTtl,
    advertise: options.advertise,
    eligible: options.eligible,
    onError: (what, err) => log.warn(what, { error: err }),
  });
  const gate = new ReplayGate({ nc, stage, instanceId: config.instance.id, owned$: ownership.owned$, release: (p) => ownership.released(p), log });
  const stats = new EndpointStats('consume');
  const runner = new StageRunner({
    metrics: ctx.metrics,
    stats,
    stage,
    js,
    jsm,
    maxAckPending: config.consumer.maxAckPending,
    ownership: gate.owned$,
    lost: ownership.lost$,
    holds: (p) => ownership.holds(p),
    released: (p) => gate.released(p),
    batchMessages: config.consumer.batchMessages,
    pullMessages: config.consumer.maxAckPending,
    ackWaitMs: config.consumer.ackWait,
    log,
    open: (partition, resume, ensureLease) => open(partition, resume, ensureLease, { epoch: gate.epoch }),
    onPartitionChange: (partition, consuming) => log.info(consuming ? 'partition consuming' : 'partition stopped', { partition }),
  });
  gate.attach(runner);
  countPartitionLosses(ownership.lost$, ctx.metrics, stage);
  ctx.metrics.ownedPartitions.addCallback((r) => r.observe(runner.consuming().length, { stage }));
  ctx.metrics.consumerLag.addCallback((r) => {
    for (const [partition, lag] of runner.lags()) r.observe(lag, { stage, partition });
  });
  let started = false;
  http.route(
    'GET',
    '/v1/partitions',
    (_req, res) =>
      sendJson(res, 200, {
        stage,
        instance: config.instance.id,
        assigned: runner.assigned(),
        consuming: runner.consuming(),
        leases: ownership.heldPartitions(),
        members: ownership.liveMembers,
        replay: gate.signal ?? null,
      }),
    'query',
    {
      summary: 'which partitions this instance is assigned, consumes and holds leases for',
      description: 'The whole picture across instances: `npm run mesh -- partitions`.',
      responses: {
        200: {
          description: "this instance's view",
          content: {
            'application/json': {
              type: 'object',
              properties: {
                stage: { type: 'string' },
                instance: { type: 'string' },
                assigned: { type: 'array', items: { type: 'integer' } },
                consuming: { type: 'array', items: { type: 'integer' } },
                leases: { type: 'array', items: { type: 'integer' } },
                members: { type: 'array', items: { type: 'string' } },
                replay: { description: 'the replay under way, or null' },
              },
            },
          },
        },
      },
    },
  );
  return {
    runner,
    ownership,
    async start() {
      // The replay phase first: an instance started mid-replay takes nothing until it knows it.
      await gate.start();
      await ownership.start();
      runner.start();
      started = true;
    },
    // Ready once a first ownership round has run and every partition taken is being consumed
    // (a spare instance with none stays ready).
    readiness: () => ({ consuming: started && ownership.settled && runner.consuming().length === runner.assigned().length }),
    discovery: {
      description: `mesh ${stage}: consumes ${stageInput(stage)} partition by partition`,
      endpoints: [
        {
          name: 'consume',
          subject: stageInputSubject(stage),
          metadata: { stream: stageInput(stage), kind: 'jetstream-partition-consumer' },
        },
      ],
      stats: () => [stats.snapshot({ partitions: runner.consuming() })],
    },
    async stop(timeoutMs) {
      await runner.stop(timeoutMs);
      gate.stop();
      await ownership.leave();
    },
  };
}
