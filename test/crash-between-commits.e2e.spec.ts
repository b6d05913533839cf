/**
 * Commit per interval, under a crash: the aggregator commits (checkpoints,
 * then acks) only every MESH_COMMIT_INTERVAL, so several batches are handled
 * between two commits. Killed there (SIGKILL, by its own fault point) with
 * batches handled and neither checkpointed nor acked, it loses their state
 * and none of their acks: a new owner resumes from the checkpoint, they come
 * again, and every key's totals are exact and its events applied in order.
 *
 * The armed aggregator commits only when a partition holds all it may have
 * unacked (MESH_MAX_ACK_PENDING=4; the interval, 60 s, never ends during the
 * test), so the kill lands between two commits whatever the timing. The test
 * checks that it did: the partition it names has a checkpoint (a commit
 * happened) that stops below every batch handled since, and a consumer whose
 * ack floor does too (those batches were not acked). Order is checked where
 * the aggregator applies events: the `arrivals` aggregation lists each key's
 * events as applied.
 */
import { aggregateKvKey, Buckets, checkpointKey, consumerName, StageInput } from '@mesh/contracts';
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import { FaultPointMessage } from '@mesh/runtime';
import { startMesh, startNatsServer, startService, type NatsServer, type ServiceProcess } from '@mesh/testing';
import { join } from 'node:path';
import { keysInEveryPartition, KeyedWaves, logRecords } from './support/keyed-waves';

/** An aggregation that lists each key's `data.seq` in the order the aggregator applied them. */
const Arrivals = join(__dirname, 'contract', 'arrivals.aggregation.js');

describe('the aggregator killed between two commits', () => {
  let server: NatsServer;
  const procs: ServiceProcess[] = [];
  const env = (extra: Record<string, string> = {}) => ({
    NATS_URL: server.url,
    MESH_LEASE_TTL: '2s',
    MESH_ACK_WAIT: '5s',
    MESH_AGGREGATION_MODULES: Arrivals,
    ...extra,
  });

  beforeAll(async () => {
    server = await startNatsServer();
    procs.push(...Object.values(await startMesh(server.url, env())));
  }, 60_000);

  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    await server?.stop();
  }, 60_000);

  /** Each key's events as the aggregator applied them (`data.seq`, in order). */
  const arrivals = async (keys: readonly string[]) => {
    const nc = await connect({ servers: server.url });
    try {
      const kv = await new Kvm(nc).open(Buckets.aggregates);
      const out: Record<string, number[]> = {};
      for (const key of keys) {
        const e = await kv.get(aggregateKvKey('arrivals', key));
        out[key] = e?.operation === 'PUT' ? e.json<{ windows: { seqs: number[] }[] }>().windows.flatMap((w) => w.seqs) : [];
      }
      return out;
    } finally {
      await nc.close();
    }
  };

  /** Where partition `p` of the aggregator stands: its checkpoint's last sequence and its consumer's ack floor. */
  const committed = async (p: number) => {
    const nc = await connect({ servers: server.url });
    try {
      const head = await (await new Kvm(nc).open(Buckets.checkpoints)).get(checkpointKey('aggregator', p));
      const info = await (await jetstreamManager(nc)).consumers.info(StageInput.aggregator, consumerName('aggregator', p));
      return { checkpointLastSeq: head?.operation === 'PUT' ? head.json<{ lastSeq: number }>().lastSeq : 0, ackFloor: info.ack_floor.stream_seq };
    } finally {
      await nc.close();
    }
  };

  it('counts every event once, in order, when it dies with batches handled and not committed', async () => {
    const aggregator = procs.find((p) => p.name === 'aggregator')!;
    await aggregator.stop();
    const armed = await startService(
      'aggregator',
      env({
        MESH_INSTANCE_ID: 'aggregator-armed',
        MESH_TEST_FAULT: 'between-commits:5',
        MESH_COMMIT_INTERVAL: '60s',
        MESH_MAX_ACK_PENDING: '4',
        MESH_BATCH_MESSAGES: '1',
      }),
    );
    procs.push(armed);
    const waves = new KeyedWaves(keysInEveryPartition('between-commits', 16));
    const ingest = procs.find((p) => p.name === 'ingest')!;
    const wave = waves.send(ingest.url, 40, 2, 10);

    await armed.exited();
    const [line] = logRecords(armed.output(), FaultPointMessage);
    expect({ signal: armed.exitSignal(), point: line?.point }).toEqual({ signal: 'SIGKILL', point: 'between-commits' });
    const uncommitted = line.uncommitted as number[];
    const partition = line.partition as number;
    // Killed between two commits: batches handled since the last commit, which neither the checkpoint nor an ack covers.
    expect(uncommitted.length).toBeGreaterThan(0);
    const at = await committed(partition);
    expect(at.checkpointLastSeq).toBeGreaterThan(0);
    expect(at.checkpointLastSeq).toBeLessThan(Math.min(...uncommitted));
    expect(at.ackFloor).toBeLessThan(Math.min(...uncommitted));

    const after = await startService('aggregator', env({ MESH_INSTANCE_ID: 'aggregator-after' }));
    procs.push(after);
    await wave;
    const result = await waves.check(server.url, after.url);
    expect(result.drained).toBe(true);
    expect(result.totals).toEqual(result.expected);
    expect(result.order).toEqual([]);
    const want = Object.fromEntries(waves.keys.map((k) => [k, Array.from({ length: result.expected[k].count }, (_, n) => n)]));
    expect(await arrivals(waves.keys)).toEqual(want);
  }, 150_000);
});
