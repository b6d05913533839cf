import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { Buckets } from '@mesh/contracts';
import { eventually, startNatsServer, type NatsServer } from '@mesh/testing';
import { leaseKey, PartitionOwnership } from './partition-ownership';
import { provisionMesh } from './provision';

const TTL = 3_000;

/** Resolves once `check` holds, polling; rejects after `timeoutMs`. */
async function until(check: () => boolean, timeoutMs: number, what: string): Promise<number> {
  const started = Date.now();
  while (!check()) {
    if (Date.now() - started > timeoutMs) throw new Error(`${what} did not happen within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return Date.now() - started;
}

/**
 * Move this process's clock forward: to the ownership, its last renewals now
 * look older than the TTL (as after a long pause), while on the server the
 * leases are as fresh as they are.
 */
function jumpClock(ms: number): void {
  const now = Date.now.bind(Date);
  jest.spyOn(Date, 'now').mockImplementation(() => now() + ms);
}

describe('PartitionOwnership (real nats-server)', () => {
  let server: NatsServer;
  let nc: NatsConnection;
  const owners: PartitionOwnership[] = [];

  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connect({ servers: server.url });
    await provisionMesh(nc, { partitions: 2, leaseTtlMs: TTL });
  });
  afterEach(async () => {
    jest.restoreAllMocks();
    for (const o of owners.splice(0)) await o.leave().catch(() => undefined);
  });
  afterAll(async () => {
    await nc?.close();
    await server?.stop();
  });

  function ownership(instanceId: string): PartitionOwnership {
    const o = new PartitionOwnership(nc, { stage: 'router', instanceId, partitions: 2, ttlMs: TTL });
    owners.push(o);
    return o;
  }

  it('gives up partitions whose renewal looks late, and retakes its own lease at once when nobody took it', async () => {
    const a = ownership('a');
    const lost: number[] = [];
    let lostAt = 0;
    a.lost$.subscribe((p) => {
      lost.push(p);
      lostAt = performance.now();
    });
    await a.start();
    await until(() => a.heldPartitions().length === 2, 5_000, 'taking both partitions');
    jumpClock(TTL);
    await until(() => lost.length === 2, TTL, 'fencing both partitions');
    await until(() => a.holds(0) && a.holds(1), TTL, 'retaking both partitions');
    // In the round that fenced them: creating the leases would have had to wait for them to expire on the server.
    expect(performance.now() - lostAt).toBeLessThan(1_000);
    const leases = await new Kvm(nc).open(Buckets.leases);
    expect((await leases.get(leaseKey('router', 0)))?.json<{ owner: string }>().owner).toBe('a');
  });

  it('does not retake a lapsed lease that another member has written meanwhile', async () => {
    const a = ownership('a');
    const lost: number[] = [];
    a.lost$.subscribe((p) => lost.push(p));
    await a.start();
    await until(() => a.heldPartitions().length === 2, 5_000, 'taking both partitions');
    // Another member writes the lease (as one that created it after it
    // expired would) and keeps renewing it, as a live owner does: however
    // slow this machine, the lease never lapses on the server meanwhile, so
    // nothing but a's retake path could give partition 0 back to a.
    const leases = await new Kvm(nc).open(Buckets.leases);
    const b = () => JSON.stringify({ owner: 'b', since: new Date().toISOString() });
    // Compare-and-set as another writer does: read again when a's renewal lands between the read and the write.
    let bRevision = 0;
    while (bRevision === 0) {
      const entry = await leases.get(leaseKey('router', 0));
      bRevision = await leases.update(leaseKey('router', 0), b(), entry!.revision).catch((err: Error) => {
        if (!/wrong last sequence/.test(err.message)) throw err;
        return 0;
      });
    }
    const renewing = setInterval(() => {
      leases.update(leaseKey('router', 0), b(), bRevision).then(
        (r) => (bRevision = r),
        () => undefined,
      );
    }, TTL / 6);
    try {
      jumpClock(TTL);
      await until(() => lost.includes(0), 5 * TTL, 'giving up partition 0');
      await until(() => a.holds(1), 5 * TTL, 'retaking partition 1');
      // Two more of a's rounds (each renews partition 1), each of which tried to take partition 0 back.
      const renewedFrom = (await leases.get(leaseKey('router', 1)))!.revision;
      await eventually(async () => (await leases.get(leaseKey('router', 1)))!.revision >= renewedFrom + 2, 5 * TTL, 50);
      expect(a.holds(0)).toBe(false);
      expect((await leases.get(leaseKey('router', 0)))?.json<{ owner: string }>().owner).toBe('b');
    } finally {
      clearInterval(renewing);
    }
  });

  it('takes no lease in a round that was under way when it left: every lease is gone and it is no member once leave() resolves', async () => {
    const a = ownership('a');
    await a.start();
    // The first round stops in the member listing (as on a slow server) until its
    // own time limit lets it go on with the members it knew; leave() comes meanwhile.
    const members = (a as unknown as { members: KV }).members;
    let listing = false;
    members.keys = (() => {
      listing = true;
      return new Promise(() => undefined);
    }) as KV['keys'];
    await until(() => listing, 5 * TTL, 'the first round listing the members');
    await a.leave();
    // Past the listing's time limit (a tick), and a little more: the round has gone on by now.
    await new Promise((r) => setTimeout(r, TTL / 3 + 500));
    const leases = await new Kvm(nc).open(Buckets.leases);
    const owners = [];
    for (const p of [0, 1]) {
      const e = await leases.get(leaseKey('router', p));
      owners.push(e?.operation === 'PUT' ? (JSON.parse(e.string()) as { owner: string }).owner : null);
    }
    expect({ leaseOwners: owners, member: (await (await new Kvm(nc).open(Buckets.members)).get('router.a'))?.operation ?? 'none' }).toEqual({
      leaseOwners: [null, null],
      member: expect.not.stringMatching(/^PUT$/),
    });
  });

  it('shows a partition lost on a failed renewal leave owned$ and come back when retaken, even when that round fails', async () => {
    const a = ownership('a');
    const sets: number[][] = [];
    a.owned$.subscribe((set) => sets.push([...set].sort()));
    const leases = await new Kvm(nc).open(Buckets.leases);
    // Once partition 0 is lost, its lease goes: the next round takes it again.
    a.lost$.subscribe((p) => void leases.purge(leaseKey('router', p)));
    await a.start();
    await until(() => a.heldPartitions().length === 2, 5_000, 'taking both partitions');
    // Another writer moves the lease on (as when our own renewal was stored but its
    // answer lost), and the round of the failed renewal fails too (the members
    // bucket does not answer, as in a leader election): it publishes nothing itself.
    const members = (a as unknown as { members: KV }).members;
    const put = members.put.bind(members);
    const failNextRound = () => {
      members.put = async (..._args: Parameters<KV['put']>) => {
        members.put = put;
        await new Promise((r) => setTimeout(r, 50));
        throw new Error('members bucket unavailable');
      };
    };
    // Compare-and-set as another writer does: when a's own renewal lands between
    // the read and the write (it renews every TTL/3), read again; and the round
    // that renewal belonged to may have used up the failing put, so arm it again.
    for (;;) {
      failNextRound();
      const entry = await leases.get(leaseKey('router', 0));
      try {
        await leases.update(leaseKey('router', 0), JSON.stringify({ owner: 'a', since: new Date().toISOString() }), entry!.revision);
        break;
      } catch (err) {
        if (!/wrong last sequence/.test((err as Error).message)) throw err;
      }
    }
    await until(() => !a.holds(0), TTL, 'losing partition 0');
    await until(() => a.holds(0), 2 * TTL, 'retaking partition 0');
    // The runner dropped the partition on lost$; it consumes it again only if owned$ says so.
    await until(() => JSON.stringify(sets[sets.length - 1]) === '[0,1]', 2 * TTL, 'owned$ showing partition 0 again');
    const heldAt = sets.findIndex((set) => set.includes(0));
    const lostAt = sets.findIndex((set, i) => i > heldAt && !set.includes(0));
    expect(heldAt).toBeGreaterThanOrEqual(0);
    expect(lostAt).toBeGreaterThan(heldAt);
    expect(sets[sets.length - 1]).toEqual([0, 1]);
  });

  it('releases a lease whose renewal is under way, on the revision that renewal leaves', async () => {
    const a = ownership('a');
    await a.start();
    await until(() => a.heldPartitions().length === 2, 5_000, 'taking both partitions');
    // Slow the answers to renewals down, so a release lands after the server has renewed but before the owner knows.
    const leases = (a as unknown as { leases: KV }).leases;
    const update = leases.update.bind(leases);
    let renewing = 0;
    leases.update = async (...args: Parameters<KV['update']>) => {
      renewing++;
      const revision = await update(...args);
      await new Promise((r) => setTimeout(r, 300));
      return revision;
    };
    await until(() => renewing > 0, TTL, 'a renewal');
    await a.released(0);
    const entry = await (await new Kvm(nc).open(Buckets.leases)).get(leaseKey('router', 0));
    expect(entry === null || entry.operation !== 'PUT').toBe(true);
  });
});

describe('PartitionOwnership members (real nats-server)', () => {
  let server: NatsServer;
  let nc: NatsConnection;
  const TTL_MS = 1_200;

  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connect({ servers: server.url });
    await provisionMesh(nc, { partitions: 2, leaseTtlMs: TTL_MS });
  });
  afterAll(async () => {
    await nc?.close();
    await server?.stop();
  });

  it('lists live members from its watch once it has run for a TTL, with no key listing (a consumer on the server) per round, and drops a member whose heartbeats stop', async () => {
    const a = new PartitionOwnership(nc, { stage: 'processor', instanceId: 'a', partitions: 2, ttlMs: TTL_MS });
    const b = new PartitionOwnership(nc, { stage: 'processor', instanceId: 'b', partitions: 2, ttlMs: TTL_MS });
    try {
      await a.start();
      await b.start();
      await eventually(async () => a.liveMembers.join() === 'a,b', 5_000, 20);
      await new Promise((r) => setTimeout(r, TTL_MS));

      // Every key listing creates a consumer on the members' stream: none over three TTLs of rounds.
      const creates = nc.subscribe(`$JS.API.CONSUMER.CREATE.KV_${Buckets.members}.>`);
      const ordered = nc.subscribe(`$JS.API.CONSUMER.CREATE.KV_${Buckets.members}`);
      await new Promise((r) => setTimeout(r, 3 * TTL_MS));
      const counted = creates.getProcessed() + ordered.getProcessed();
      creates.unsubscribe();
      ordered.unsubscribe();
      expect(counted).toBe(0);
      expect(a.liveMembers).toEqual(['a', 'b']);

      // b stops without leaving (as if frozen or killed): its entry stays until its heartbeats are a TTL old.
      b.relinquish();
      const gone = await until(() => a.liveMembers.join() === 'a', 3 * TTL_MS, "b's removal from a's members");
      expect(gone).toBeLessThan(3 * TTL_MS);
    } finally {
      await a.leave();
      await b.leave();
    }
  });
});
