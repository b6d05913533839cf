/**
 * `mesh replay`: rebuild everything downstream of ingest from MESH_INGEST
 * while the services keep running.
 *
 * 1. Signal: `replay.epoch` in mesh_checkpoints becomes {epoch: n, from,
 *    phase: 'pause'} (compare-and-set: two replays at once cannot both win).
 * 2. Pause: every stage instance stops its partitions (finishing, acking and
 *    checkpointing what it has in hand) but keeps its leases, then acks
 *    `replay.ack.<stage>.<instance>` with n. This waits for an ack from every
 *    live member in mesh_members (a dead one drops out when its key
 *    expires). No answer in time: nothing is reset, the stages resume, and
 *    the command fails naming who did not answer.
 * 3. Reset (as admin; `--dry-run` lists this and stops before step 1): each
 *    stage consumer `<stage>-pNN` is recreated, the router's at the first
 *    event stored at or after the time (every event for `beginning`), the
 *    processor's and aggregator's after the last message of their input, so
 *    they see only what the replay produces; the stages' keys in
 *    mesh_checkpoints (checkpoints, chunks, retry records) and every result
 *    in mesh_aggregates are purged.
 * 4. Resume: phase 'run'. The stages open their partitions from empty
 *    checkpoints; their outputs carry ids `e<n>:...`, which the streams'
 *    duplicate windows have not seen (the first run's ids would be dropped).
 *
 * The router's duplicate window needs nothing: it lives in memory and is
 * rebuilt from the stream when a partition opens, before the new start.
 */
import { DeliverPolicy, JetStreamApiCodes, type ConsumerConfig, type ConsumerInfo } from '@nats-io/jetstream';
import { nanos } from '@nats-io/nats-core';
import { Kvm, type KV } from '@nats-io/kv';
import {
  Buckets,
  checkpointPrefix,
  consumerName,
  kvStream,
  kvSubject,
  parseReplaySignal,
  ReplayEpochKey,
  replayAckKey,
  stageInput,
  Streams,
  type ReplaySignal,
  type Stage,
} from '@mesh/contracts';
import { partitionConsumerConfig } from '@mesh/messaging';
import type { ReplayArgs } from './replay-argv';
import { isNotFound, requireStream, type CommandContext } from './context';
import { CliError } from './errors';
import { recordedPartitions } from '@mesh/operations';
import { allStages, bucketKeys } from '@mesh/operations';

/** When a consumer to recreate is missing, it gets the services' defaults (they adjust these when they open it). */
const FallbackConsumer = { maxAckPending: 1000, ackWaitMs: 30_000 };
const PollMs = 200;

interface ConsumerReset {
  stage: Stage;
  partition: number;
  stream: string;
  name: string;
  /** What the recreated consumer delivers first. */
  start: { deliver_policy: DeliverPolicy; opt_start_time?: string; opt_start_seq?: number };
  describe: string;
}

interface Plan {
  epoch: number;
  signalRevision: number;
  partitions: number;
  members: string[];
  consumers: ConsumerReset[];
  checkpointKeys: Record<Stage, number>;
  results: number;
  /** The router, every handler service, the aggregator. */
  stages: Stage[];
}

async function countSubjects(ctx: CommandContext, stream: string, filter: string): Promise<number> {
  const info = await ctx.jsm.streams.info(stream, { subjects_filter: filter });
  return Object.keys(info.state.subjects ?? {}).length;
}

/** Live members of the stages (every key of mesh_members): `router.<instance>`, `refunds.<instance>`... */
async function liveMembers(ctx: CommandContext, members: KV): Promise<string[]> {
  const live: string[] = [];
  for (const k of await bucketKeys(ctx, Buckets.members)) {
    if (k.indexOf('.') <= 0) continue;
    // A member that left wrote a delete marker; one that died has no message left once its key expired.
    if ((await members.get(k))?.operation === 'PUT') live.push(k);
  }
  return live;
}

async function makePlan(ctx: CommandContext, args: ReplayArgs, checkpoints: KV, members: KV): Promise<Plan> {
  const partitions = await recordedPartitions(ctx);
  if (partitions === undefined) throw new CliError(`no partition count in ${Buckets.checkpoints} at ${ctx.natsUrl}; the mesh is not provisioned there`);
  const current = await checkpoints.get(ReplayEpochKey);
  const signal: ReplaySignal | undefined = current?.operation === 'PUT' ? parseReplaySignal(current.string()) : undefined;
  const lastSeq = async (stream: string) => (await requireStream(ctx, stream)).state.last_seq;
  const routedEnd = await lastSeq(Streams.routed);
  const processedEnd = await lastSeq(Streams.processed);
  await requireStream(ctx, Streams.ingest);
  const consumers: ConsumerReset[] = [];
  const stages = await allStages(ctx);
  for (const stage of stages) {
    for (let p = 0; p < partitions; p++) {
      const stream = stageInput(stage);
      let start: ConsumerReset['start'];
      let describe: string;
      if (stage === 'router') {
        start = args.from === 'beginning' ? { deliver_policy: DeliverPolicy.All } : { deliver_policy: DeliverPolicy.StartTime, opt_start_time: args.from };
        describe = args.from === 'beginning' ? 'from the first stored event' : `from the first event stored at or after ${args.from}`;
      } else {
        const after = stage === 'aggregator' ? processedEnd : routedEnd;
        start = { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: after + 1 };
        describe = `from sequence ${after + 1} (only what the replay produces)`;
      }
      consumers.push({ stage, partition: p, stream, name: consumerName(stage, p), start, describe });
    }
  }
  const checkpointStream = kvStream(Buckets.checkpoints);
  const checkpointKeys = {} as Record<Stage, number>;
  for (const stage of stages) checkpointKeys[stage] = await countSubjects(ctx, checkpointStream, kvSubject(Buckets.checkpoints, `${checkpointPrefix(stage)}>`));
  const results = await countSubjects(ctx, kvStream(Buckets.aggregates), kvSubject(Buckets.aggregates, '>'));
  return {
    epoch: (signal?.epoch ?? 0) + 1,
    signalRevision: current?.revision ?? 0,
    partitions,
    members: await liveMembers(ctx, members),
    consumers,
    checkpointKeys,
    results,
    stages,
  };
}

function planLines(args: ReplayArgs, plan: Plan): string[] {
  const lines = [
    `replay epoch ${plan.epoch} from ${args.from === 'beginning' ? 'the beginning of MESH_INGEST' : args.from}`,
    `pause: ${plan.members.length} stage instance(s)${plan.members.length > 0 ? `: ${plan.members.join(', ')}` : ''}`,
  ];
  for (const stage of plan.stages) {
    const c = plan.consumers.find((x) => x.stage === stage)!;
    lines.push(`recreate consumers: ${c.stream}/${stage}-p00..p${String(plan.partitions - 1).padStart(2, '0')} (${plan.partitions}) ${c.describe}`);
  }
  for (const stage of plan.stages)
    lines.push(
      `purge ${Buckets.checkpoints} ${checkpointPrefix(stage)}>: ${plan.checkpointKeys[stage]} key(s)${stage === 'aggregator' ? ' (checkpoints and their chunks)' : stage !== 'router' ? ' (checkpoints, retry records and handler state)' : ''}`,
    );
  lines.push(`purge ${Buckets.aggregates}: ${plan.results} result(s)${args.from === 'beginning' ? '' : `; windows before ${args.from} are not rebuilt`}`);
  lines.push(`resume: outputs of the replay carry message ids e${plan.epoch}:...; ${Streams.aggregates} and ${Streams.dlq} are kept`);
  return lines;
}

async function writeSignal(checkpoints: KV, signal: ReplaySignal, revision: number): Promise<number> {
  const value = JSON.stringify(signal);
  try {
    return revision === 0 ? await checkpoints.create(ReplayEpochKey, value) : await checkpoints.update(ReplayEpochKey, value, revision);
  } catch (err) {
    throw new CliError(`could not write ${ReplayEpochKey} in ${Buckets.checkpoints} (another replay started meanwhile?): ${(err as Error).message}`);
  }
}

/** Wait until every live stage member has acked `phase` of `epoch`; two rounds in a row, so a member that joined meanwhile is seen. */
async function waitForAcks(ctx: CommandContext, checkpoints: KV, members: KV, epoch: number, timeoutMs: number): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  let allAckedBefore = false;
  let missing: string[] = [];
  for (;;) {
    const live = await liveMembers(ctx, members);
    missing = [];
    for (const m of live) {
      const [stage, ...rest] = m.split('.');
      const e = await checkpoints.get(replayAckKey(stage as Stage, rest.join('.')));
      const ack = e?.operation === 'PUT' ? (JSON.parse(e.string()) as { epoch?: number; phase?: string }) : undefined;
      if (ack?.epoch !== epoch || ack.phase !== 'pause') missing.push(m);
    }
    if (missing.length === 0 && allAckedBefore) return live;
    allAckedBefore = missing.length === 0;
    if (Date.now() > deadline) throw new AckTimeout(missing);
    await new Promise((r) => setTimeout(r, PollMs));
  }
}

class AckTimeout extends Error {
  constructor(readonly missing: string[]) {
    super(`no pause ack from ${missing.join(', ')}`);
  }
}

async function recreateConsumer(ctx: CommandContext, c: ConsumerReset): Promise<void> {
  let old: ConsumerInfo | undefined;
  try {
    old = await ctx.jsm.consumers.info(c.stream, c.name);
  } catch (err) {
    if (!isNotFound(err, JetStreamApiCodes.ConsumerNotFound)) throw err;
  }
  const base = partitionConsumerConfig(c.stage, c.partition, {
    maxAckPending: old?.config.max_ack_pending ?? FallbackConsumer.maxAckPending,
    ackWaitMs: old?.config.ack_wait !== undefined ? Math.round(old.config.ack_wait / 1e6) : FallbackConsumer.ackWaitMs,
  });
  const config: Partial<ConsumerConfig> = { ...base, ...c.start };
  if (old?.config.ack_wait !== undefined) config.ack_wait = old.config.ack_wait;
  else config.ack_wait = nanos(FallbackConsumer.ackWaitMs);
  if (old) await ctx.jsm.consumers.delete(c.stream, c.name);
  await ctx.jsm.consumers.add(c.stream, config);
}

export async function replay(ctx: CommandContext, args: ReplayArgs): Promise<void> {
  const kvm = new Kvm(ctx.nc);
  const checkpoints = await kvm.open(Buckets.checkpoints);
  const members = await kvm.open(Buckets.members);
  const plan = await makePlan(ctx, args, checkpoints, members);
  const lines = planLines(args, plan);
  const say = (line: string) => (ctx.json ? undefined : ctx.out.out(line));
  if (args.dryRun) {
    if (ctx.json)
      ctx.out.out(
        JSON.stringify(
          { dryRun: true, from: args.from, epoch: plan.epoch, members: plan.members, checkpointKeys: plan.checkpointKeys, results: plan.results, plan: lines },
          null,
          2,
        ),
      );
    else lines.forEach((l) => ctx.out.out(l));
    ctx.out.err('dry run: nothing was changed');
    return;
  }
  say(lines[0]);
  const pause: ReplaySignal = { epoch: plan.epoch, from: args.from, phase: 'pause' };
  const revision = await writeSignal(checkpoints, pause, plan.signalRevision);
  let paused: string[];
  try {
    paused = await waitForAcks(ctx, checkpoints, members, plan.epoch, args.timeoutMs);
  } catch (err) {
    if (!(err instanceof AckTimeout)) throw err;
    // Nothing was reset: the stages carry on where they were (under the new epoch's ids, which is harmless).
    await writeSignal(checkpoints, { ...pause, phase: 'run' }, revision);
    throw new CliError(
      `these stage instances did not pause within ${args.timeoutMs} ms: ${err.missing.join(', ')}; nothing was reset and the stages resumed. ` +
        'Check that they are running and connected (an instance that died leaves mesh_members when its key expires), then run the replay again',
    );
  }
  say(`paused: ${paused.length} stage instance(s)`);
  // The ends of MESH_ROUTED and MESH_PROCESSED only now stand still: what the
  // stages published up to their pause was before the plan was made.
  const { consumers, stages } = await makePlan(ctx, args, checkpoints, members);
  for (const c of consumers) await recreateConsumer(ctx, c);
  say(`recreated ${consumers.length} stage consumers`);
  const checkpointStream = kvStream(Buckets.checkpoints);
  for (const stage of stages) await ctx.jsm.streams.purge(checkpointStream, { filter: kvSubject(Buckets.checkpoints, `${checkpointPrefix(stage)}>`) });
  await ctx.jsm.streams.purge(kvStream(Buckets.aggregates));
  say(`purged the stages' checkpoints and retry records, and the results in ${Buckets.aggregates}`);
  await writeSignal(checkpoints, { ...pause, phase: 'run' }, revision);
  if (ctx.json) ctx.out.out(JSON.stringify({ from: args.from, epoch: plan.epoch, paused, plan: lines }, null, 2));
  else say(`resumed: epoch ${plan.epoch}; the results now rebuild from ${args.from === 'beginning' ? 'the beginning' : args.from}`);
}
