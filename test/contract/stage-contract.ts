/**
 * The contract every consuming stage keeps, as one suite run against each
 * (in the spirit of Watermill's universal tests): a target names the stage
 * and how to read what it wrote per key; the suite runs it as real
 * processes behind the rest of the mesh, on a nats-server of its own, and
 * checks, with a seeded random choice of keys, kill points and pauses:
 *
 * (a) exactly once across many restarts: killed and restarted 3-4 times
 *     while events stream in (SIGKILL from outside at a random moment, and
 *     its own SIGKILL at a fault point: after its outputs are stored and
 *     before its inputs are acked, between commits, while taking a
 *     partition), it writes every event's output once;
 * (b) order with concurrency: two instances, each running keys side by
 *     side, under a heavier load, while a third joins and leaves (SIGTERM)
 *     and a fourth joins and dies (SIGKILL) with messages in hand, keep every
 *     key's outputs in the order its events were sent;
 * (c) redelivery without ack: an instance that stored a batch's outputs
 *     and froze before acking it (SIGSTOP, for longer than the lease TTL)
 *     never acks; the batch goes to the next owner and is written once;
 * (d) graceful stop releases partitions: SIGTERM to one of two instances;
 *     it exits 0 with none of its leases left in mesh_leases, the other
 *     holds every lease well before a lapsed lease could have moved, and
 *     nothing is lost or doubled.
 *
 * "Written once, in order" is checked per key as the list of `data.seq` in
 * the stage's output, which must be exactly 0, 1, ..., n-1; and the totals
 * at the end of the mesh must be exact. Checked only once the mesh has
 * settled (every partition consumer drained, twice), so a late duplicate
 * shows.
 *
 * The seed comes from MESH_TEST_SEED (or is drawn), is printed at the start,
 * and begins every failure's message with how to rerun it.
 */
import type { Stage } from '@mesh/contracts';
import { assignPartitions } from '@mesh/messaging';
import { FaultPointMessage, FaultPointStopMessage } from '@mesh/runtime';
import {
  eventually,
  leaseOwner,
  readStreamEvents,
  seqsByKey,
  seededRng,
  startMesh,
  startNatsServer,
  startService,
  testSeed,
  totalsFor,
  withSeed,
  type NatsServer,
  type Rng,
  type ServiceProcess,
} from '@mesh/testing';
import { join, relative } from 'node:path';
import { keysInEveryPartition, logRecords } from '../support/keyed-waves';
import { consumingPartitions } from '../support/mesh-state';
import { processState } from '../support/process-state';
import { waitUntilSettled } from '../support/settled';
import { SeededFeed } from './seeded-feed';

/** A consuming stage as the suite sees it. */
export interface StageTarget {
  stage: Stage;
  /** The spec file, for the rerun hint (`__filename`). */
  specFile: string;
  /** Env that raises the stage's per-key concurrency above 1 (given to every instance). */
  concurrencyEnv: Record<string, string>;
  /** Fault points of its own (beyond before-ack, between-commits and handover) where case (a) may kill it. */
  extraFaultPoints?: string[];
  /** Each key's outputs as the `data.seq` of its events, in the order the stage wrote them. */
  readOutput(natsUrl: string, keys: readonly string[]): Promise<Map<string, number[]>>;
}

/** Small and fast: few partitions, a short lease TTL, small batches (many commits, so kills land between them). */
const P = 4;
const LEASE_TTL_MS = 2_000;
/** An aggregation that lists each key's `data.seq` in the order the aggregator applied them. */
export const ArrivalsModule = join(__dirname, 'arrivals.aggregation.js');

/** What is wrong with one key's outputs (empty when they are exactly 0 .. n-1 in order). */
export function seqProblems(key: string, got: readonly number[], n: number): string[] {
  if (got.length === n && got.every((s, i) => s === i)) return [];
  const seen = new Map<number, number>();
  for (const s of got) seen.set(s, (seen.get(s) ?? 0) + 1);
  const missing = Array.from({ length: n }, (_, s) => s).filter((s) => !seen.has(s));
  const twice = [...seen].filter(([, c]) => c > 1).map(([s]) => s);
  const back = got.findIndex((s, i) => i > 0 && s < got[i - 1]);
  const list = (xs: number[]) => `[${xs.slice(0, 12).join(',')}${xs.length > 12 ? `,... ${xs.length} in all` : ''}]`;
  const parts = [`${got.length} outputs for ${n} events`];
  if (missing.length > 0) parts.push(`missing ${list(missing)}`);
  if (twice.length > 0) parts.push(`more than once ${list(twice)}`);
  if (back > 0) parts.push(`out of order: ${got[back]} after ${got[back - 1]} at position ${back}`);
  return [`${key}: ${parts.join('; ')}`];
}

/** Each key's outputs read from `stream` (MESH_ROUTED, MESH_PROCESSED): every event of every envelope, in stream order. */
export async function streamOutput(natsUrl: string, stream: string, keys: readonly string[]): Promise<Map<string, number[]>> {
  const all = seqsByKey(await readStreamEvents(natsUrl, stream));
  return new Map(keys.map((k) => [k, all.get(k) ?? []]));
}

/** The mesh a target runs in: one nats-server, ingest and the other stages once each, and the instances of the stage under test. */
class ContractMesh {
  server!: NatsServer;
  /** Live instances of the stage under test, oldest first. */
  readonly instances: ServiceProcess[] = [];
  private readonly everything: ServiceProcess[] = [];
  private others: Partial<Record<Stage | 'ingest', ServiceProcess>> = {};

  constructor(private readonly target: StageTarget) {}

  env(extra: Record<string, string> = {}): Record<string, string> {
    return {
      NATS_URL: this.server.url,
      MESH_PARTITIONS: String(P),
      MESH_LEASE_TTL: `${LEASE_TTL_MS}ms`,
      MESH_ACK_WAIT: '4s',
      MESH_BATCH_MESSAGES: '4',
      MESH_SHUTDOWN_TIMEOUT: '10s',
      MESH_AGGREGATION_MODULES: ArrivalsModule,
      ...this.target.concurrencyEnv,
      ...extra,
    };
  }

  async open(): Promise<void> {
    this.server = await startNatsServer();
    const mesh = await startMesh(this.server.url, this.env());
    this.everything.push(...Object.values(mesh));
    const { [this.target.stage]: first, ...rest } = mesh;
    this.others = rest;
    this.instances.push(first);
  }

  get natsUrl(): string {
    return this.server.url;
  }

  ingestUrl = (): string => this.others.ingest!.url;

  /** A live aggregator (the stage under test, when it is the aggregator). */
  aggregatorUrl(): string {
    const p = this.target.stage === 'aggregator' ? this.instances[0] : this.others.aggregator;
    if (!p) throw new Error('no aggregator is running');
    return p.url;
  }

  /** One more instance of the stage under test. */
  async start(extra: Record<string, string> = {}, waitReady = true): Promise<ServiceProcess> {
    const p = await startService(this.target.stage, this.env(extra), { waitReady });
    this.everything.push(p);
    this.instances.push(p);
    return p;
  }

  async kill(p: ServiceProcess): Promise<void> {
    this.forget(p);
    await p.kill();
  }

  async stop(p: ServiceProcess): Promise<number | null> {
    this.forget(p);
    return p.stop();
  }

  /** No longer counted as a live instance (a frozen one); still stopped by close(). */
  forget(p: ServiceProcess) {
    const i = this.instances.indexOf(p);
    if (i >= 0) this.instances.splice(i, 1);
  }

  /** Exactly `n` live instances of the stage under test, each consuming its partitions. */
  async scaleTo(n: number): Promise<void> {
    while (this.instances.length > n) await this.stop(this.instances[this.instances.length - 1]);
    while (this.instances.length < n) await this.start();
    if (n > 0) await this.shareAll();
  }

  /** Every partition consumed by one of the live instances (after a death, once the dead owner's leases lapsed). */
  async shareAll(timeoutMs = 30_000): Promise<void> {
    let seen: number[][] = [];
    await eventually(
      async () => {
        seen = await Promise.all(this.instances.map((p) => consumingPartitions(p.url)));
        return seen.flat().length === P && seen.every((c) => c.length > 0);
      },
      timeoutMs,
      100,
      () => `partitions consumed per instance: ${JSON.stringify(seen)}`,
    );
  }

  async close(): Promise<void> {
    for (const p of this.everything) {
      try {
        process.kill(p.pid, 'SIGCONT'); // a frozen process cannot act on SIGTERM
      } catch {
        // gone already
      }
    }
    await Promise.all(this.everything.map((p) => p.stop()));
    await this.server?.stop();
  }
}

/** Its instance id, as it reports it. */
async function instanceIdOf(p: ServiceProcess): Promise<string> {
  return ((await (await fetch(`${p.url}/v1/partitions`)).json()) as { instance: string }).instance;
}

/** `p`, armed with MESH_TEST_FAULT=`point:n`, kills itself there. */
async function diesAtFaultPoint(p: ServiceProcess, point: string, n: number): Promise<void> {
  await eventually(
    async () => p.exitSignal() !== null,
    60_000,
    20,
    () => `still alive, armed with ${point}:${n}:\n${p.output().slice(-2000)}`,
  );
  expect({ signal: p.exitSignal(), point: logRecords(p.output(), FaultPointMessage)[0]?.point }).toEqual({ signal: 'SIGKILL', point });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function describeStageContract(target: StageTarget): void {
  const seed = testSeed();
  const rerun = `MESH_TEST_SEED=${seed} npx jest ${relative(process.cwd(), target.specFile)}`;
  const stage = target.stage;

  describe(`the ${stage} keeps the stage contract (seed=${seed})`, () => {
    const mesh = new ContractMesh(target);

    beforeAll(async () => {
      console.log(`stage contract of the ${stage}: seed=${seed} (rerun: ${rerun})`);
      await mesh.open();
    }, 90_000);
    afterAll(() => mesh.close(), 60_000);

    /** A case: its own generator and keys, and a failure that names the seed. */
    const contractCase = (name: string, fn: (rng: Rng, keyPrefix: string) => Promise<void>, timeoutMs = 150_000) =>
      it(name, () => withSeed(seed, rerun, () => fn(seededRng(seed, `${stage} ${name}`), `${stage}-${name.split(' ')[0]}`)), timeoutMs);

    /** Keys in every partition; `heavy`: more producers, larger requests and shorter pauses, so batches queue up and run side by side. */
    const newFeed = (rng: Rng, keyPrefix: string, label: string, heavy = false) =>
      new SeededFeed(mesh.ingestUrl, keysInEveryPartition(keyPrefix, P, rng.between(3, 6)), seed, `${stage} ${label}`, {
        producers: heavy ? 3 : 2,
        perRequest: heavy ? rng.between(20, 40) : rng.between(8, 20),
        pauseMs: heavy ? [20, 60] : [50, 150],
      });

    /** Once the mesh has settled: every key's outputs are 0 .. n-1 once each, in order, and its totals exact. */
    const expectExactlyOnceInOrder = async (feed: SeededFeed) => {
      await waitUntilSettled(mesh.natsUrl, P, 90_000);
      const out = await target.readOutput(mesh.natsUrl, feed.keys);
      expect(feed.keys.flatMap((k) => seqProblems(k, out.get(k) ?? [], feed.count(k)))).toEqual([]);
      expect(await totalsFor(mesh.aggregatorUrl(), feed.keys)).toEqual(feed.expectedTotals());
    };

    contractCase('exactly-once across many restarts (killed mid-stream 3-4 times, at random and at fault points)', async (rng, keyPrefix) => {
      // Where each instance dies: a SIGKILL from outside a random while after it took its partitions, or its
      // own SIGKILL the n-th time it reaches a fault point. Every run has one from outside, one with a batch's
      // outputs stored and its inputs unacked (before-ack), and one with a batch received but not yet handled
      // (between-commits); a fourth, if drawn, anywhere (also while taking a partition: handover). In random order.
      const points = ['before-ack', 'between-commits', 'handover', ...(target.extraFaultPoints ?? [])];
      const kills = rng.between(3, 4);
      const plan = ['signal', 'before-ack', 'between-commits', ...Array.from({ length: kills - 3 }, () => rng.pick(['signal', ...points]))]
        .map((kind) => ({ kind, order: rng.next() }))
        .sort((x, y) => x.order - y.order)
        .map(({ kind }) =>
          kind === 'signal' ? { kind, waitMs: rng.between(0, 600) } : { kind, n: kind === 'handover' ? rng.between(1, P) : rng.between(2, 10) },
        );
      await mesh.scaleTo(0);
      const feed = newFeed(rng, keyPrefix, 'restarts').start();
      try {
        for (const kill of plan) {
          if (kill.kind === 'signal') {
            const p = await mesh.start({}, false);
            // At work on every partition (once the dead one's leases lapsed), then killed whatever it has in hand.
            await mesh.shareAll();
            await feed.flowFor(rng.between(20, 120));
            await sleep(kill.waitMs!);
            await mesh.kill(p);
          } else {
            const p = await mesh.start({ MESH_TEST_FAULT: `${kill.kind}:${kill.n}` }, false);
            await diesAtFaultPoint(p, kill.kind, kill.n!);
            mesh.forget(p);
          }
        }
        await mesh.start({}, false);
        await mesh.shareAll();
        await feed.flowFor(rng.between(50, 150));
      } finally {
        await feed.stop();
      }
      console.log(
        `${stage}: killed ${plan.map((k) => (k.kind === 'signal' ? `from outside ${k.waitMs} ms after resuming` : `at ${k.kind}:${k.n}`)).join(', ')}; ${feed.sent} events over ${feed.keys.length} keys`,
      );
      await expectExactlyOnceInOrder(feed);
    });

    contractCase('order with concurrency (keys side by side in two instances; a third joins and leaves, a fourth joins and dies)', async (rng, keyPrefix) => {
      await mesh.scaleTo(2);
      const feed = newFeed(rng, keyPrefix, 'order', true).start();
      try {
        await feed.flowFor(rng.between(50, 200));
        // Partitions move under load: to a third instance as it joins, back as it leaves (SIGTERM) ...
        const third = await mesh.start();
        await feed.flowFor(rng.between(100, 300));
        expect(await mesh.stop(third)).toBe(0);
        await mesh.shareAll();
        // ... and to a fourth, which dies (its own SIGKILL between two commits, one message a batch) with
        // messages received and unacked: they must come again before anything after them. Its id is one the
        // assignment gives a partition to.
        const members = await Promise.all(mesh.instances.map(instanceIdOf));
        const fresh = (i: number) => `${stage}-dying-${rng.int(1e9)}-${i}`;
        let id = fresh(0);
        for (let i = 1; (assignPartitions([...members, id], P).get(id)?.length ?? 0) === 0; i++) id = fresh(i);
        const n = rng.between(2, 8);
        const fourth = await mesh.start({ MESH_INSTANCE_ID: id, MESH_TEST_FAULT: `between-commits:${n}`, MESH_BATCH_MESSAGES: '1' }, false);
        await diesAtFaultPoint(fourth, 'between-commits', n);
        mesh.forget(fourth);
        await mesh.shareAll();
        await feed.flowFor(rng.between(100, 300));
      } finally {
        await feed.stop();
      }
      await expectExactlyOnceInOrder(feed);
    });

    contractCase('redelivery without ack (frozen before acking, beyond the lease TTL)', async (rng, keyPrefix) => {
      await mesh.scaleTo(0);
      // The n-th batch it finishes (outputs stored, state checkpointed) it freezes before acking.
      const n = rng.between(2, 8);
      const frozen = await mesh.start({ MESH_TEST_FAULT: `before-ack:${n}:stop` });
      let line: Record<string, unknown> | undefined;
      let feed: SeededFeed | undefined;
      try {
        feed = newFeed(rng, keyPrefix, 'redelivery').start();
        await eventually(
          async () => (line = logRecords(frozen.output(), FaultPointStopMessage)[0]) !== undefined && processState(frozen.pid) === 'T',
          60_000,
          20,
          () => `no freeze at before-ack:${n}; its log ends:\n${frozen.output().slice(-2000)}`,
        );
        expect((line!.seqs as number[]).length).toBeGreaterThan(0);
        // The next owner takes every partition once the frozen one's leases lapse.
        mesh.forget(frozen);
        await mesh.start();
        await mesh.shareAll();
        await feed.flowFor(rng.between(50, 200));
        await feed.stop();
        // Drained means every message is acked: the frozen batch too, which its first owner never acked.
        await waitUntilSettled(mesh.natsUrl, P, 90_000);
        expect(processState(frozen.pid)).toBe('T');
      } finally {
        mesh.forget(frozen);
        await feed?.stop().catch(() => undefined);
        await frozen.kill();
      }
      console.log(`${stage}: froze before acking seqs ${JSON.stringify(line!.seqs)} of partition ${String(line!.partition)}; ${feed!.sent} events`);
      await expectExactlyOnceInOrder(feed!);
    });

    contractCase('graceful stop releases partitions (SIGTERM with another instance running)', async (rng, keyPrefix) => {
      await mesh.scaleTo(2);
      const [a, b] = mesh.instances;
      const [leaving, staying] = rng.chance(0.5) ? [a, b] : [b, a];
      const [leavingId, stayingId] = await Promise.all([instanceIdOf(leaving), instanceIdOf(staying)]);
      const feed = newFeed(rng, keyPrefix, 'stop').start();
      let leftBehind: number[] = [];
      let handedOverMs = Number.POSITIVE_INFINITY;
      try {
        await feed.flowFor(rng.between(50, 250));
        expect(await mesh.stop(leaving)).toBe(0);
        const exitedAt = Date.now();
        const owners = async () => Promise.all(Array.from({ length: P }, (_, p) => leaseOwner(mesh.natsUrl, stage, p)));
        leftBehind = (await owners()).flatMap((o, p) => (o === leavingId ? [p] : []));
        await eventually(async () => (await owners()).every((o) => o === stayingId), 30_000, 20);
        handedOverMs = Date.now() - exitedAt;
        await mesh.shareAll();
        await feed.flowFor(rng.between(50, 150));
      } finally {
        await feed.stop();
      }
      console.log(`${stage}: every lease held by the other instance ${handedOverMs} ms after the stopped one exited; ${feed.sent} events`);
      // Released before it exited, not left to lapse; and a lease left to lapse moves only after the TTL less one
      // renewal interval (a third of it): these moved well before.
      // On a failure, what the stopped instance said about its leases tells why.
      const leaseLines = leaving
        .output()
        .split('\n')
        .filter((l) => /lease|ownership|shutting down|stopped/.test(l));
      const released = { leasesStillNamingTheStoppedInstance: leftBehind, allHeldByTheOtherWithinHalfTheTtl: handedOverMs < LEASE_TTL_MS / 2 };
      const good = { leasesStillNamingTheStoppedInstance: [], allHeldByTheOtherWithinHalfTheTtl: true };
      expect(JSON.stringify(released) === JSON.stringify(good) ? released : { ...released, whatTheStoppedInstanceLogged: leaseLines.slice(-20) }).toEqual(good);
      await expectExactlyOnceInOrder(feed);
    });
  });
}
