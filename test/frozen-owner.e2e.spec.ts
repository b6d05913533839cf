/**
 * Frozen owners (zombies). For each stateful stage, two instances share the
 * partitions while events stream in. One (A) freezes itself (SIGSTOP, armed
 * with MESH_TEST_FAULT=<point>:20:stop) at an exact place mid-stream: its
 * worker has stored a batch's outputs (the aggregator: its checkpoint) and
 * nothing is acked. It stays frozen for longer than the lease TTL while the
 * other (B) takes its partitions over and goes on; then it is thawed
 * (SIGCONT) while events still flow, and resumes from that very place.
 *
 * The test proves that A, first thing after the thaw, finds the lease gone
 * and says so; acks neither the batch it froze in nor anything delivered to
 * it while frozen; gets nothing stored for that partition until it holds the
 * lease again (what it sends is refused by the server's compare-and-set or
 * dropped as a duplicate); and that the totals stay exact and every key's
 * events reach MESH_PROCESSED once each, in order.
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
import { consumerName, decodeKvToken, partitionOf, stageInput, type Stage } from '@mesh/contracts';
import { eventually, startNatsServer, startService, type NatsServer, type ServiceName, type ServiceProcess } from '@mesh/testing';
import { keysInEveryPartition, KeyedWaves, logRecords } from './support/keyed-waves';
import { processState } from './support/process-state';
import { consumingPartitions } from './support/mesh-state';

const P = 16;
const FaultPointStopMessage = 'fault point reached; stopping this process';
const LeaseNotHeldMessage = 'lease of the partition not held; batch left for its owner';

/**
 * Where A freezes itself: its worker has written everything for a batch
 * (outputs; for the aggregator the checkpoint, with its results still to
 * write) and nothing is acked.
 */
const FREEZE_AT: Record<Stage, string> = { router: 'before-ack', processor: 'before-ack', aggregator: 'after-checkpoint' };
/** What A must refuse first after the thaw: the acks, or (aggregator) the results write that comes before them. */
const REFUSED: Record<Stage, string> = { router: 'acked', processor: 'acked', aggregator: 'written' };

const TTL_MS = 2_000;

/** What each stage writes, as subjects a plain subscriber sees. */
const WRITES: Record<Stage, string[]> = {
  router: ['mesh.routed.>', 'mesh.dlq.>'],
  processor: ['mesh.processed.>', 'mesh.dlq.>', '$KV.mesh_checkpoints.>'],
  aggregator: ['$KV.mesh_checkpoints.>', '$KV.mesh_aggregates.>', 'mesh.aggregates.>', 'mesh.dlq.>'],
};

/** The partition a write is for, from its subject (or body, for a closed window); -1 for a key of no partition (provisioning's). */
function partitionOfWrite(m: Msg): number {
  const s = m.subject;
  let r = /^mesh\.(?:routed|processed|dlq\.\w+)\.(\d+)(?:\.|$)/.exec(s);
  if (r) return Number(r[1]);
  r = /^\$KV\.mesh_checkpoints\.\w+\.p(\d+)(?:\.|$)/.exec(s);
  if (r) return Number(r[1]);
  r = /^\$KV\.mesh_aggregates\.[^.]+\.(.+)$/.exec(s);
  if (r) return partitionOf(decodeKvToken(r[1]), P);
  if (s.startsWith('mesh.aggregates.')) return partitionOf(m.json<{ key: string }>().key, P);
  return -1;
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

  constructor(
    private readonly nc: NatsConnection,
    stage: Stage,
    inboxA: string,
  ) {
    this.on(`${inboxA}.>`, (m) => {
      if (m.reply?.startsWith(`$JS.ACK.${stageInput(stage)}.${stage}-p`)) this.deliveredToA.set(m.reply, Date.now());
      else if (m.reply?.startsWith('$JS.ACK.'))
        return; // a KV watch of its own
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

  /** What went wrong in a callback (a throw there would close the connection): checked by the test. */
  readonly errors: string[] = [];

  private on(subject: string, fn: (m: Msg) => void) {
    const callback = (err: Error | null, m: Msg) => {
      try {
        if (!err) fn(m);
      } catch (e) {
        this.errors.push(`${m.subject}: ${(e as Error).message}`);
      }
    };
    this.subs.push(this.nc.subscribe(subject, { callback }));
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
  let stopFlow = async () => undefined as void;
  afterAll(async () => {
    await stopFlow().catch(() => undefined);
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
    let a!: ServiceProcess;
    let b!: ServiceProcess;
    let ingest!: ServiceProcess;
    let aggregator!: ServiceProcess;
    // The processor first: it declares the handlers the router routes to.
    for (const name of ['processor', 'ingest', 'router', 'aggregator'] as const) {
      if (name === stage) {
        // A freezes itself mid-stream, the 20th time it reaches the point.
        a = await start(stage, { MESH_INSTANCE_ID: `${stage}-a`, NATS_INBOX_PREFIX: inboxA, MESH_TEST_FAULT: `${FREEZE_AT[stage]}:20:stop` });
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
    // However the test ends, the producers stop.
    stopFlow = async () => {
      flowing = false;
      await flow;
    };
    if (!(await eventually(async () => logRecords(a.output(), FaultPointStopMessage).length > 0 && processState(a.pid) === 'T', 60_000, 20))) {
      throw new Error(`A did not freeze at ${FREEZE_AT[stage]}; ${watch.deliveredToA.size} deliveries to it; its log:\n${a.output().slice(-3000)}`);
    }
    const frozenAt = Date.now();
    const [frozen] = logRecords(a.output(), FaultPointStopMessage);
    expect(frozen.point).toBe(FREEZE_AT[stage]);
    // The partitions A was consuming when it froze, from its own log.
    const consumingAtFreeze = new Set<number>();
    for (const r of logRecords(a.output(), 'partition consuming', 'partition stopped')) {
      if (Date.parse(r.time as string) > Date.parse(frozen.time as string)) break;
      if (r.msg === 'partition consuming') consumingAtFreeze.add(r.partition as number);
      else consumingAtFreeze.delete(r.partition as number);
    }
    const lostByA = [...consumingAtFreeze];
    expect(lostByA).toContain(frozen.partition);
    // B takes every partition once A's leases lapse, and works on them for a while.
    expect(await eventually(async () => (await consumingPartitions(b.url)).length === P, 30_000, 100)).toBe(true);
    const sentAtTakeover = waves.sent;
    expect(await eventually(async () => waves.sent >= sentAtTakeover + 200, 30_000, 50)).toBe(true);
    // Frozen for longer than the lease TTL, as the scenario says (B may take over sooner: A's last renewal came before it froze).
    const stillToFreeze = frozenAt + TTL_MS + 100 - Date.now();
    if (stillToFreeze > 0) await new Promise((r) => setTimeout(r, stillToFreeze));

    process.kill(a.pid, 'SIGCONT');
    const thawedAt = Date.now();
    // First thing after the thaw, with its worker's writes done: A finds the lease gone and does not ack.
    const refused = () => logRecords(a.output(), LeaseNotHeldMessage).some((r) => r.partition === frozen.partition && r.left === REFUSED[stage]);
    if (!(await eventually(async () => refused(), 10_000, 50))) {
      throw new Error(
        `A did not refuse partition ${String(frozen.partition)} for a lost lease; its log after the freeze:\n${a
          .output()
          .slice(a.output().indexOf(FaultPointStopMessage) - 300)
          .slice(0, 4000)}`,
      );
    }
    // A notices, and comes back for its share while events still flow.
    const lostLogged = () => new Set(logRecords(a.output(), 'partition lost; stopped at once').map((r) => r.partition as number));
    expect(await eventually(async () => lostByA.every((p) => lostLogged().has(p)), 30_000, 100)).toBe(true);
    expect(await eventually(async () => (await consumingPartitions(a.url)).length > 0, 30_000, 100)).toBe(true);
    const sentAtReturn = waves.sent;
    expect(await eventually(async () => waves.sent >= sentAtReturn + 100, 30_000, 50)).toBe(true);
    await stopFlow();

    const result = await waves.check(server.url, resultsUrl());
    expect(result.drained).toBe(true);
    expect(result.totals).toEqual(result.expected);
    expect(result.order).toEqual([]);

    expect(watch.errors).toEqual([]);
    // When A held each partition again after the thaw (from its own log).
    const retakenAt = new Map<number, number>();
    // From its opening of the partition: a new owner may write as it opens (the aggregator rewrites the results).
    for (const r of logRecords(a.output(), 'partition opening')) {
      const at = Date.parse(r.time as string);
      const p = r.partition as number;
      if (at >= thawedAt && !retakenAt.has(p)) retakenAt.set(p, at);
    }
    // (1) After the thaw A acks neither the batch it froze in nor anything delivered to it while it was frozen.
    // (Acks it decided before the freeze may leave its buffers only after the thaw: they are its owner's acks.)
    const frozenTime = Date.parse(frozen.time as string);
    const frozenBatch = new Set((frozen.seqs as number[]).map((seq) => `${consumerName(stage, frozen.partition as number)}.${seq}`));
    const ackedStale = watch.acks.filter((k) => {
      const delivered = watch.deliveredToA.get(k.subject);
      if (k.at < thawedAt || delivered === undefined || delivered >= thawedAt) return false;
      const t = k.subject.split('.');
      // $JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time ns>.<pending>. The server's
      // time of the delivery, not when the test saw it: what the server sent after A's last line came to a frozen A.
      const sentAt = Number(BigInt(t[t.length - 2]) / 1_000_000n);
      return frozenBatch.has(`${t[t.length - 6]}.${t[t.length - 4]}`) || sentAt >= frozenTime;
    });
    expect(ackedStale.map((k) => `${k.subject} acked ${k.at - thawedAt} ms after the thaw (A froze at ${frozenTime})`)).toEqual([]);
    // (2) A's writes for the partition it froze in, between the thaw and its retake: refused or duplicates, never stored.
    const stale = watch.writesByA.filter((w) => w.partition === frozen.partition && w.at >= thawedAt && w.at < (retakenAt.get(w.partition) ?? Infinity));
    const stored = stale.filter((w) => {
      const answer = watch.answers.get(w.reply);
      if (answer === undefined) return false; // never answered: not stored
      const parsed = JSON.parse(answer) as { error?: unknown; duplicate?: boolean };
      return parsed.error === undefined && parsed.duplicate !== true;
    });
    expect(stored.map((w) => `${w.subject} -> ${watch.answers.get(w.reply)}`)).toEqual([]);
    // Reported, not asserted: what the freeze caught A with.
    const deliveredWhileFrozen = [...watch.deliveredToA].filter(
      ([subject, at]) => at < thawedAt && Number(BigInt(subject.split('.').at(-2)!) / 1_000_000n) >= frozenTime,
    ).length;
    process.stdout.write(
      `${stage}: A froze at ${String(frozen.point)} in partition ${String(frozen.partition)} (seqs ${JSON.stringify(frozen.seqs)}) holding ${lostByA.length} partitions; ` +
        `${deliveredWhileFrozen} messages delivered to it while frozen; after the thaw it sent ${stale.length} writes for that partition before retaking it ` +
        `(none stored) and ${ackedStale.length} stale acks\n`,
    );
    watch.stop();
  }, 180_000);
});
