/**
 * The 3-node cluster helper against real nats-server processes: an R3
 * stream survives the SIGKILL of its leader without losing an acked message,
 * the killed node comes back with its ports and store, and stop() leaves no
 * process behind.
 */
import { existsSync } from 'node:fs';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startNatsCluster, type NatsCluster } from './nats-cluster';

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function until<T>(what: string, timeoutMs: number, attempt: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await attempt();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`${what} within ${timeoutMs} ms (last error: ${(last as Error)?.message ?? 'none'})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('startNatsCluster: a 3-node JetStream cluster', () => {
  let cluster: NatsCluster | undefined;
  let nc: NatsConnection | undefined;
  let js: JetStreamClient;
  let jsm: JetStreamManager;
  /** Payload of every message the cluster acknowledged, by stream sequence. */
  const acked = new Map<number, string>();

  /** Publish until acked (retrying through failover with the same msgID, so a retry is stored once). */
  async function publishAcked(n: number, timeoutMs = 30_000): Promise<void> {
    const payload = `m-${n}`;
    const ack = await until(`message ${n} was not acknowledged`, timeoutMs, () => js.publish(`t.${n % 7}`, payload, { msgID: payload, timeout: 2_000 }));
    if (!ack.duplicate) expect(acked.has(ack.seq)).toBe(false);
    acked.set(ack.seq, payload);
  }

  async function storedPayloads(): Promise<Map<number, string>> {
    const stored = new Map<number, string>();
    const info = await jsm.streams.info('T');
    for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
      const m = await jsm.streams.getMessage('T', { seq });
      if (m) stored.set(seq, m.string());
    }
    return stored;
  }

  beforeAll(async () => {
    cluster = await startNatsCluster();
    nc = await connect({ servers: cluster.urls.split(','), maxReconnectAttempts: -1, reconnectTimeWait: 100, timeout: 5_000 });
    js = jetstream(nc, { timeout: 5_000 });
    jsm = await jetstreamManager(nc, { timeout: 5_000 });
  }, 60_000);

  afterAll(async () => {
    await nc?.close();
    await cluster?.stop();
  }, 60_000);

  it('runs three nodes n1..n3 on distinct loopback ports, each with its own store', () => {
    const c = cluster!;
    expect(c.nodes.map((n) => n.name)).toEqual(['n1', 'n2', 'n3']);
    expect(c.urls.split(',')).toEqual(c.nodes.map((n) => `nats://127.0.0.1:${n.port}`));
    const ports = c.nodes.flatMap((n) => [n.port, n.clusterPort, n.monitorPort]);
    expect(new Set(ports).size).toBe(9);
    expect(ports).not.toContain(4222);
    expect(new Set(c.nodes.map((n) => n.storeDir)).size).toBe(3);
    for (const n of c.nodes) {
      expect(n.running).toBe(true);
      expect(isAlive(n.pid)).toBe(true);
    }
  });

  it('creates an R3 stream whose replicas are the three nodes, and publishes to it', async () => {
    const info = await jsm.streams.add({ name: 'T', subjects: ['t.>'], num_replicas: 3 });
    expect(info.config.num_replicas).toBe(3);
    const leader = await cluster!.leaderOf('T');
    const members = await until('the stream did not report two replicas', 10_000, async () => {
      const replicas = (await jsm.streams.info('T')).cluster?.replicas ?? [];
      return replicas.length === 2 ? [leader, ...replicas.map((r) => r.name)] : undefined;
    });
    expect(members.sort()).toEqual(['n1', 'n2', 'n3']);

    for (let n = 0; n < 100; n++) await publishAcked(n);
    expect((await jsm.streams.info('T')).state.messages).toBe(100);
  }, 60_000);

  it('elects a new leader after SIGKILL of the stream leader and loses no acked message', async () => {
    const c = cluster!;
    const oldLeader = c.node(await c.leaderOf('T'));
    const pid = oldLeader.pid;

    // Publish while the leader dies: some of these are in flight at the kill.
    const during = Promise.all(Array.from({ length: 50 }, (_, i) => publishAcked(100 + i)));
    await oldLeader.kill();
    expect(oldLeader.running).toBe(false);
    expect(() => process.kill(pid, 0)).toThrow();

    const newLeader = await c.leaderOf('T');
    expect(newLeader).not.toBe(oldLeader.name);
    await during;
    for (let n = 150; n < 250; n++) await publishAcked(n);

    const stored = await storedPayloads();
    expect(acked.size).toBe(250);
    expect(stored.size).toBe(250);
    // Every acknowledged message is there, at the sequence its ack named, exactly once.
    for (const [seq, payload] of acked) expect(stored.get(seq)).toBe(payload);
    expect(new Set(stored.values()).size).toBe(250);
  }, 90_000);

  it('restarts the killed node on its ports and store, and it catches up with the stream', async () => {
    const c = cluster!;
    const down = c.nodes.find((n) => !n.running)!;
    const { port, clusterPort, storeDir } = down;
    await down.restart();
    expect(down.running).toBe(true);
    expect([down.port, down.clusterPort, down.storeDir]).toEqual([port, clusterPort, storeDir]);
    await down.waitHealthy();

    await until(`${down.name} did not become a current replica of T`, 30_000, async () => {
      const info = await jsm.streams.info('T');
      const current = [info.cluster?.leader, ...(info.cluster?.replicas ?? []).filter((r) => r.current && !r.offline).map((r) => r.name)];
      return current.includes(down.name) && current.length === 3 ? true : undefined;
    });
    for (let n = 250; n < 260; n++) await publishAcked(n);
    expect((await jsm.streams.info('T')).state.messages).toBe(260);

    // Its own copy is complete: make it the leader (step down until the election picks it) and read the state it serves.
    await until(`${down.name} was not elected leader of T`, 60_000, async () => {
      if ((await c.leaderOf('T')) === down.name) return true;
      await nc!.request('$JS.API.STREAM.LEADER.STEPDOWN.T', '', { timeout: 2_000 });
      await until('T had no leader after a step-down', 30_000, () => c.leaderOf('T'));
      return undefined;
    });
    const info = await jsm.streams.info('T');
    expect(info.cluster?.leader).toBe(down.name);
    expect(info.state.messages).toBe(260);
    const stored = await storedPayloads();
    for (const [seq, payload] of acked) expect(stored.get(seq)).toBe(payload);
  }, 90_000);

  it('stops every node, leaving no process and no store behind', async () => {
    const c = cluster!;
    await nc?.close();
    nc = undefined;
    const pids = c.nodes.map((n) => n.pid);
    await c.stop();
    cluster = undefined;
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
    for (const n of c.nodes) {
      expect(n.running).toBe(false);
      expect(existsSync(n.storeDir)).toBe(false);
    }
  }, 60_000);
});
