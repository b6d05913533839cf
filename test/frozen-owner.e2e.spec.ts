/**
 * Frozen owners (zombies). For each stateful stage, two instances share the
 * partitions while events stream in; one (A) is frozen with SIGSTOP for
 * longer than the lease TTL, the other (B) takes its partitions over and
 * goes on; then A is thawed (SIGCONT) mid-stream. The test proves that A,
 * for the partitions it lost, acks nothing it had received and writes
 * nothing that is stored until it holds their leases again: every write it
 * sends meanwhile is refused by the server (compare-and-set) or dropped as a
 * duplicate. And the totals stay exact and each key in order.
 *
 * How A is watched: A and B get inbox prefixes of their own
 * (NATS_INBOX_PREFIX), so the test, subscribed on plain NATS, sees which
 * instance each message was delivered to (a pull delivery goes to its
 * puller's inbox and carries its own ack subject), which instance sent each
 * write (its reply subject is the sender's inbox) and what the server
 * answered it.
 */
import type { Msg, NatsConnection, Subscription } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { decodeKvToken, partitionOf, type Stage } from '@mesh/contracts';
import { eventually, startNatsServer, startService, type NatsServer, type ServiceName, type ServiceProcess } from '@mesh/testing';
import { keysInEveryPartition, KeyedWaves, logRecords } from './support/keyed-waves';
import { consumingPartitions } from './support/mesh-state';

const P = 16;
const TTL_MS = 2_000;

/** What each stage writes, as subjects a plain subscriber sees. */
const WRITES: Record<Stage, string[]> = {
  router: ['mesh.routed.>', 'mesh.dlq.>'],
  processor: ['mesh.processed.>', 'mesh.dlq.>', '$KV.mesh_checkpoints.>'],
  aggregator: ['$KV.mesh_checkpoints.>', '$KV.mesh_aggregates.>', 'mesh.aggregates.>', 'mesh.dlq.>'],
};

/** The partition a write is for, from its subject (or body, for a closed window). */
function partitionOfWrite(m: Msg): number {
  const s = m.subject;
  let r = /^mesh\.(?:routed|processed|dlq\.\w+)\.(\d+)(?:\.|$)/.exec(s);
  if (r) return Number(r[1]);
  r = /^\$KV\.mesh_checkpoints\.\w+\.p(\d+)(?:\.|$)/.exec(s);
  if (r) return Number(r[1]);
  r = /^\$KV\.mesh_aggregates\.[^.]+\.(.+)$/.exec(s);
  if (r) return partitionOf(decodeKvToken(r[1]), P);
  if (s.startsWith('mesh.aggregates.')) return partitionOf(m.json<{ key: string }>().key, P);
  throw new Error(`no partition known for a write on ${s}`);
}

interface Seen {
  at: number;
  subject: string;
  reply: string;
  partition: number;
}

/** What the test sees on plain NATS. */
class Watch {
  /** Ack subjects of messages delivered to A, and when. */
  readonly deliveredToA = new Map<string, number>();
  /** +ACKs sent on those subjects, and when. */
  readonly acks: { subject: string; at: number }[] = [];
  readonly writesByA: Seen[] = [];
  /** The server's answer to each of A's requests, by reply subject. */
  readonly answers = new Map<string, string>();
  private readonly subs: Subscription[] = [];

  constructor(private readonly nc: NatsConnection, stage: Stage, inboxA: string) {
    this.on(`${inboxA}.>`, (m) => {
      if (m.reply?.startsWith('$JS.ACK.')) this.deliveredToA.set(m.reply, Date.now());
      else this.answers.set(m.subject, m.string());
    });
    this.on('$JS.ACK.>', (m) => {
      const body = m.string();
      if (body === '' || body === '+ACK') this.acks.push({ subject: m.subject, at: Date.now() });
    });
    for (const subject of WRITES[stage]) {
      this.on(subject, (m) => {
        if (m.reply?.startsWith(`${inboxA}.`)) this.writesByA.push({ at: Date.now(), subject: m.subject, reply: m.reply, partition: partitionOfWrite(m) });
      });
    }
  }

  private on(subject: string, fn: (m: Msg) => void) {
    this.subs.push(this.nc.subscribe(subject, { callback: (err, m) => !err && fn(m) }));
  }

  stop() {
    for (const s of this.subs) s.unsubscribe();
  }
}

describe.each(['router', 'processor', 'aggregator'] as const)('a frozen %s owner thawed after losing its partitions', (stage) => {
  let server: NatsServer;
  let nc: NatsConnection;
  const procs: ServiceProcess[] = [];
  const env = (extra: Record<string, string> = {}) => ({ NATS_URL: server.url, MESH_LEASE_TTL: `${TTL_MS}ms`, MESH_ACK_WAIT: '5s', ...extra });
  const start = async (name: ServiceName, extra: Record<string, string> = {}) => {
    const p = await startService(name, env(extra));
    procs.push(p);
    return p;
  };

  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connect({ servers: server.url });
  });
  afterAll(async () => {
    for (const p of procs) {
      try {
        process.kill(p.pid, 'SIGCONT'); // never leave a stopped process behind
      } catch {
        // gone already
      }
    }
    await Promise.all(procs.map((p) => p.stop()));
    await nc?.close();
    await server?.stop();
  }, 60_000);

  it('acks nothing it had received and gets nothing stored for them until it holds their leases again; totals exact, keys in order', async () => {
    const inboxA = `_INBOX_${stage}A`;
    const watch = new Watch(nc, stage, inboxA);
    // The processor first: it declares the handlers the router routes to.
    const others = (['processor', 'ingest', 'router', 'aggregator'] as const).filter((n) => n !== stage);
    let a!: ServiceProcess;
    let b!: ServiceProcess;
    let ingest!: ServiceProcess;
    let aggregator!: ServiceProcess;
    for (const name of ['processor', ...others.filter((n) => n !== 'processor')] as ServiceName[]) {
      if (name === stage) {
        a = await start(stage, { MESH_INSTANCE_ID: `${stage}-a`, NATS_INBOX_PREFIX: inboxA });
        b = await start(stage, { MESH_INSTANCE_ID: `${stage}-b`, NATS_INBOX_PREFIX: `_INBOX_${stage}B` });
      } else {
        const p = await start(name);
        if (name === 'ingest') ingest = p;
        if (name === 'aggregator') aggregator = p;
      }
    }
    if (stage === 'aggregator') aggregator = a;
    const resultsUrl = () => (stage === 'aggregator' ? b : aggregator).url;

    // Both own partitions and A has work in hand: the stream is flowing.
    expect(await eventually(async () => (await consumingPartitions(a.url)).length > 0 && (await consumingPartitions(b.url)).length > 0, 30_000)).toBe(true);
    const waves = new KeyedWaves(keysInEveryPartition(`frozen-${stage}`, P));
    let flowing = true;
    const flow = (async () => {
      while (flowing) await waves.send(ingest.url, 2, 2, 20);
    })();
    expect(await eventually(async () => watch.deliveredToA.size >= 20, 30_000, 50)).toBe(true);

    const lostByA = await consumingPartitions(a.url);
    process.kill(a.pid, 'SIGSTOP');
    const frozenAt = Date.now();
    // B takes every partition once A's leases lapse, and works on them for a while.
    expect(await eventually(async () => (await consumingPartitions(b.url)).length === P, 30_000, 100)).toBe(true);
    const sentAtTakeover = waves.sent;
    expect(await eventually(async () => waves.sent >= sentAtTakeover + 200, 30_000, 50)).toBe(true);
    expect(Date.now() - frozenAt).toBeGreaterThan(TTL_MS);

    process.kill(a.pid, 'SIGCONT');
    const thawedAt = Date.now();
    // A notices, and comes back for its share while events still flow.
    const lostLogged = () => new Set(logRecords(a.output(), 'partition lost; stopped at once').map((r) => r.partition as number));
    expect(await eventually(async () => lostByA.every((p) => lostLogged().has(p)), 30_000, 100)).toBe(true);
    expect(await eventually(async () => (await consumingPartitions(a.url)).length > 0, 30_000, 100)).toBe(true);
    const sentAtReturn = waves.sent;
    expect(await eventually(async () => waves.sent >= sentAtReturn + 100, 30_000, 50)).toBe(true);
    flowing = false;
    await flow;

    const result = await waves.check(server.url, resultsUrl());
    expect(result.drained).toBe(true);
    expect(result.totals).toEqual(result.expected);
    expect(result.order).toEqual([]);

    // When A held each partition again after the thaw (from its own log).
    const retakenAt = new Map<number, number>();
    for (const r of logRecords(a.output(), 'partition consuming')) {
      const at = Date.parse(r.time as string);
      const p = r.partition as number;
      if (at >= thawedAt && !retakenAt.has(p)) retakenAt.set(p, at);
    }
    const lost = new Set(lostByA);
    // (1) Nothing delivered to A before the thaw was acked after it.
    const ackedStale = watch.acks.filter((k) => k.at >= thawedAt && (watch.deliveredToA.get(k.subject) ?? Infinity) < thawedAt);
    expect(ackedStale.map((k) => k.subject)).toEqual([]);
    // (2) A's writes for a lost partition between the thaw and its retake: refused or duplicates, never stored.
    const stale = watch.writesByA.filter((w) => lost.has(w.partition) && w.at >= thawedAt && w.at < (retakenAt.get(w.partition) ?? Infinity));
    const stored = stale.filter((w) => {
      const answer = watch.answers.get(w.reply);
      if (answer === undefined) return false; // never answered: not stored
      const parsed = JSON.parse(answer) as { error?: unknown; duplicate?: boolean };
      return parsed.error === undefined && parsed.duplicate !== true;
    });
    expect(stored.map((w) => `${w.subject} -> ${watch.answers.get(w.reply)}`)).toEqual([]);
    // Reported, not asserted: how often the freeze landed mid-batch.
    process.stdout.write(
      `${stage}: A lost ${lostByA.length} partitions; after the thaw it sent ${stale.length} writes for them before retaking (all refused or duplicates), ` +
        `${watch.deliveredToA.size} deliveries to A seen in all\n`,
    );
    watch.stop();
  }, 180_000);
});
