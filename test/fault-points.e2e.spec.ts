/**
 * Faults at exact points. Each consuming stage is killed (SIGKILL, by itself,
 * through MESH_TEST_FAULT) at a named place while events stream in:
 *
 * - before-ack: its outputs are stored and its state checkpointed, its
 *   inputs not acked;
 * - between-commits: one batch of a partition acked, the next one received
 *   and about to be handled;
 * - after-checkpoint (aggregator): the checkpoint written, the results not;
 * - handover: a second instance has just taken a partition's lease and
 *   loaded its state, and dies before consuming it.
 *
 * Each time the test checks the kill landed there (the exit signal, the line
 * the process wrote just before, and that it held the lease of the partition
 * it names), restarts the stage, and then that every key's totals are exact
 * and its events reached MESH_PROCESSED once each, in order.
 */
import type { Stage } from '@mesh/contracts';
import type { FaultPointName } from '@mesh/runtime';
import { leaseOwner, startMesh, startNatsServer, startService, type NatsServer, type ServiceName, type ServiceProcess } from '@mesh/testing';
import { keysInEveryPartition, KeyedWaves, logRecords } from './support/keyed-waves';

const FaultPointMessage = 'fault point reached; killing this process';

const POINTS: Record<Stage, FaultPointName[]> = {
  router: ['before-ack', 'between-commits', 'handover'],
  processor: ['before-ack', 'between-commits', 'handover'],
  aggregator: ['before-ack', 'after-checkpoint', 'between-commits', 'handover'],
};

/** Resolves when `p` exits; rejects naming `what` if it has not within `ms`. */
async function exitWithin(p: ServiceProcess, ms: number, what: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    p.exited(),
    new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms:\n${p.output().slice(-3000)}`)), ms))),
  ]).finally(() => clearTimeout(timer));
}

describe.each(['router', 'processor', 'aggregator'] as const)('the %s killed at an exact fault point', (stage) => {
  let server: NatsServer;
  const procs: ServiceProcess[] = [];
  let ingest: ServiceProcess;
  let aggregator: ServiceProcess;
  /** The live instance of the stage under test. */
  let current: ServiceProcess;
  // Small batches: a wave makes many of them, so the n-th time comes mid-stream.
  const env = (extra: Record<string, string> = {}) => ({ NATS_URL: server.url, MESH_LEASE_TTL: '3s', MESH_ACK_WAIT: '5s', MESH_BATCH_MESSAGES: '4', ...extra });
  const start = async (name: ServiceName, extra: Record<string, string> = {}, waitReady = true) => {
    const p = await startService(name, env(extra), { waitReady });
    procs.push(p);
    return p;
  };

  beforeAll(async () => {
    server = await startNatsServer();
    const mesh = await startMesh(server.url, env());
    procs.push(...Object.values(mesh));
    ({ ingest, aggregator } = mesh);
    current = mesh[stage];
  }, 60_000);

  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    await server?.stop();
  }, 60_000);

  /** The process died by its own SIGKILL at `point`, holding the lease of the partition its last line names. */
  const expectKilledAt = async (p: ServiceProcess, instance: string, point: FaultPointName) => {
    await exitWithin(p, 60_000, `the ${stage} dying at ${point}`);
    const [line] = logRecords(p.output(), FaultPointMessage);
    expect({ signal: p.exitSignal(), point: line?.point, stage: line?.stage }).toEqual({ signal: 'SIGKILL', point, stage });
    expect(typeof line.partition).toBe('number');
    // Nobody can take the lease before its TTL lapses: it is still the dead owner's.
    expect(await leaseOwner(server.url, stage, line.partition as number)).toBe(instance);
  };

  it.each(POINTS[stage])(
    'counts every event once and keeps each key in order when it dies at %s',
    async (point) => {
      // Keys of their own per point. After the checkpoint, one request per key:
      // the batch that dies holds the last events of its keys, so only the
      // next owner's rewrite of the partition's results can make them right.
      const once = point === 'after-checkpoint';
      // Every partition has keys, so whichever partition the kill lands on gets events after it.
      const waves = new KeyedWaves(keysInEveryPartition(`${stage}-${point}`, 16, once ? 4 : 1));
      const send = (pauseMs: number) => (once ? waves.send(ingest.url, 2, 2) : waves.send(ingest.url, 24, 2, pauseMs));
      if (point === 'handover') {
        // A second instance takes the partitions the live one hands it, and dies on the first.
        const instance = `${stage}-armed-${point}`;
        const wave = send(20);
        const armed = await start(stage, { MESH_TEST_FAULT: `${point}:1`, MESH_INSTANCE_ID: instance }, false);
        await expectKilledAt(armed, instance, point);
        await wave;
        // More of every key after the death: the partition the dead instance took must be consumed again.
        await send(0);
      } else {
        // The third time, so the instance has handled and acked work before.
        await current.stop();
        const instance = `${stage}-armed-${point}`;
        // Between commits: one message a batch, so while one is handled the
        // next ones wait received and unacked, and the kill finds some in hand.
        const batch: Record<string, string> = point === 'between-commits' ? { MESH_BATCH_MESSAGES: '1' } : {};
        const armed = await start(stage, { MESH_TEST_FAULT: `${point}:${point === 'between-commits' ? 8 : 3}`, MESH_INSTANCE_ID: instance, ...batch });
        const wave = send(point === 'between-commits' ? 0 : 10);
        await expectKilledAt(armed, instance, point);
        current = await start(stage, { MESH_INSTANCE_ID: `${stage}-after-${point}` });
        await wave;
      }
      const result = await waves.check(server.url, (stage === 'aggregator' ? current : aggregator).url);
      expect(result.drained).toBe(true);
      expect(result.totals).toEqual(result.expected);
      expect(result.order).toEqual([]);
    },
    150_000,
  );
});
