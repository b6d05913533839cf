/**
 * Partition ownership for one stage of one instance.
 *
 * - Membership: the instance keeps `<stage>.<instance>` alive in
 *   `mesh_members` (bucket TTL) with a heartbeat; live members are the keys
 *   present. A member that leaves deletes its key; one that dies expires.
 * - Assignment: every member computes the same rendezvous assignment of
 *   partitions to live members (assignPartitions); with `eligible`, to the
 *   live members it picks from what they advertise (a handler service: those
 *   hosting every handler declared for it), or all when it picks none.
 * - Leases: a partition is taken only by creating `<stage>.<NN>` in
 *   `mesh_leases` (compare-and-set: it must not exist), renewed with an
 *   update on the revision it holds, and released (deleted) after the
 *   stage has finished and acked its in-flight work. A dead owner's lease
 *   expires with the bucket TTL.
 * - Fencing: an owner that has not renewed a lease within the TTL (a long
 *   pause, a lost connection) gives the partition up at once, before anybody
 *   else can create the lease, so no partition has two live owners.
 * - Retaking a lapsed lease: the owner that gave a partition up for lack of a
 *   timely renewal first tries to update the lease on the revision it last
 *   held (compare-and-set). That succeeds only if nobody has written the key
 *   since and it has not expired, so it is as safe as creating it, and the
 *   partition resumes after one round instead of after the TTL.
 *
 * `owned$` emits the set of partitions this instance may consume; the stage
 * runner follows it and calls `released(p)` once a partition it gave up is
 * finished.
 */
import type { NatsConnection } from '@nats-io/nats-core';
import { Kvm, KvWatchInclude, type KV } from '@nats-io/kv';
import { BehaviorSubject, distinctUntilChanged, Subject, type Observable } from 'rxjs';
import { Buckets, type Stage } from '@mesh/contracts';
import { assignPartitions } from './assignment';

export interface OwnershipOptions {
  stage: Stage;
  instanceId: string;
  partitions: number;
  /** TTL of the mesh_members and mesh_leases buckets. */
  ttlMs: number;
  /** More for the member entry (a handler service's hosted handlers: `{ handlers: [...] }`), for `mesh handlers` and operators. */
  advertise?: Record<string, unknown>;
  /**
   * The live members partitions are assigned to, from what each advertises
   * (undefined for a member not heard from since this one started: it
   * heartbeats within a tick). Empty: all of them.
   */
  eligible?(live: readonly string[], advertised: ReadonlyMap<string, Record<string, unknown>>): string[];
  onError?(what: string, err: unknown): void;
}

export interface LeaseValue {
  owner: string;
  since: string;
}

export function leaseKey(stage: Stage, partition: number): string {
  return `${stage}.${String(partition).padStart(2, '0')}`;
}

export function memberKey(stage: Stage, instanceId: string): string {
  return `${stage}.${instanceId}`;
}

interface Held {
  revision: number;
  renewedAt: number;
  releasing: boolean;
  /** The renewal under way: a release waits for it, or it would delete on a revision that is no longer the key's. */
  renewing?: Promise<void>;
}

function sameSet(a: ReadonlySet<number>, b: ReadonlySet<number>): boolean {
  return a.size === b.size && [...a].every((x) => b.has(x));
}

export class PartitionOwnership {
  private members!: KV;
  private leases!: KV;
  private readonly held = new Map<number, Held>();
  /** Partitions given up for a late or failed renewal: the revision last held, to retake it by compare-and-set. */
  private readonly lapsed = new Map<number, number>();
  private readonly subject = new BehaviorSubject<ReadonlySet<number>>(new Set());
  private timer?: NodeJS.Timeout;
  private ticking = false;
  /** The round under way: leave() waits for it, so it cannot take a lease after the leases were released. */
  private roundInFlight?: Promise<void>;
  private stopped = false;
  private watchers: { stop(): void }[] = [];
  /** What each member of the stage advertised in its last heartbeat (for `eligible`). */
  private readonly advertised = new Map<string, Record<string, unknown>>();
  private readonly since = new Date().toISOString();
  /**
   * When each member's last heartbeat (or this instance's join) reached the
   * members watch. Once the watch has run for a TTL, every live member has
   * been heard from in it, and the live list comes from here instead of a
   * key listing per round (one temporary consumer on the server each time,
   * most of an idle mesh's server work).
   */
  private readonly heardAt = new Map<string, number>();
  /** Since when the members watch runs without a break (undefined: not running, list keys). */
  private watchingSince?: number;
  /** Members seen at the last tick, for operators and tests. */
  liveMembers: string[] = [];
  /** True once a first round has run: before it, owning nothing means nothing yet. */
  settled = false;

  readonly owned$: Observable<ReadonlySet<number>> = this.subject.pipe(distinctUntilChanged(sameSet));
  private readonly lostSubject = new Subject<number>();
  /** Partitions whose lease lapsed or was taken: stop them now, do not finish them. */
  readonly lost$: Observable<number> = this.lostSubject.asObservable();

  constructor(
    private readonly nc: NatsConnection,
    private readonly o: OwnershipOptions,
  ) {}

  private get tickMs(): number {
    return Math.max(100, Math.floor(this.o.ttlMs / 3));
  }

  async start(): Promise<void> {
    const kvm = new Kvm(this.nc);
    this.members = await kvm.open(Buckets.members);
    this.leases = await kvm.open(Buckets.leases);
    await this.heartbeat();
    // React at once to joins, leaves and released leases; expiry is caught by the periodic tick.
    const prefix = `${this.o.stage}.>`;
    const stagePrefix = `${this.o.stage}.`;
    const members = await this.members.watch({ key: prefix, include: KvWatchInclude.UpdatesOnly });
    const leases = await this.leases.watch({ key: prefix, include: KvWatchInclude.UpdatesOnly });
    this.watchers.push(members, leases);
    this.watchingSince = Date.now();
    void (async () => {
      // Heartbeats are PUTs too: only a new member or one leaving changes the assignment.
      for await (const e of members) {
        const member = e.key.slice(stagePrefix.length);
        if (e.operation === 'PUT') this.heardAt.set(member, Date.now());
        else this.heardAt.delete(member);
        if (this.o.eligible) this.remember(member, e.operation === 'PUT' ? e.string() : undefined);
        if (e.operation !== 'PUT' || !this.liveMembers.includes(member)) this.kick();
      }
    })()
      .catch(() => undefined)
      // A watch that ended can no longer vouch for the list: back to listing keys.
      .finally(() => (this.watchingSince = undefined));
    void (async () => {
      // A released lease may be one this instance is waiting for.
      for await (const e of leases) if (e.operation !== 'PUT') this.kick();
    })().catch(() => undefined);
    // One tick's grace lets instances started together see each other before taking partitions.
    this.timer = setTimeout(() => this.loop(), this.tickMs);
  }

  private loop(): void {
    if (this.stopped) return;
    // Rounds start a tick apart (not a tick after the last one ended), so a
    // slow round does not stretch the time between renewals.
    const startedAt = Date.now();
    this.tick()
      .catch((err) => this.o.onError?.('ownership tick failed', err))
      .finally(() => {
        if (!this.stopped) this.timer = setTimeout(() => this.loop(), Math.max(10, this.tickMs - (Date.now() - startedAt)));
      });
  }

  private remember(member: string, value: string | undefined): void {
    if (value === undefined) {
      this.advertised.delete(member);
      return;
    }
    try {
      this.advertised.set(member, JSON.parse(value) as Record<string, unknown>);
    } catch {
      this.advertised.delete(member);
    }
  }

  private kick(): void {
    if (this.stopped || this.timer === undefined) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.loop(), 10);
  }

  private async heartbeat(): Promise<void> {
    await this.members.put(
      memberKey(this.o.stage, this.o.instanceId),
      JSON.stringify({ ...this.o.advertise, instance: this.o.instanceId, stage: this.o.stage, since: this.since }),
    );
  }

  /**
   * One round, bounded: a KV call can hang while a stream elects a new
   * leader, and a round that never ends would keep every later round (and so
   * every retake) from running. A late round's effects are harmless: an
   * old renewal time only makes the fence act sooner.
   */
  private async tick(): Promise<void> {
    if (this.ticking) return;
    this.ticking = true;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`ownership round took over ${this.o.ttlMs} ms`)), this.o.ttlMs);
    });
    const round = this.round();
    this.roundInFlight = round.catch(() => undefined);
    try {
      await Promise.race([round, deadline]);
    } catch (err) {
      this.fence();
      this.o.onError?.('ownership tick failed', err);
    } finally {
      clearTimeout(timer);
      this.ticking = false;
    }
  }

  /** Live members of the stage; the last known list when the bucket does not answer in time. */
  private async listMembers(): Promise<string[]> {
    const now = Date.now();
    // Trusted only while this instance's own heartbeats come back through it (a stalled watch or server: list keys).
    const selfHeard = now - (this.heardAt.get(this.o.instanceId) ?? 0) < this.o.ttlMs;
    if (this.watchingSince !== undefined && now - this.watchingSince >= this.o.ttlMs && selfHeard) {
      // A member is live while its heartbeats keep coming, as the bucket's TTL would have it.
      return [...this.heardAt].filter(([, at]) => now - at < this.o.ttlMs).map(([member]) => member);
    }
    const prefix = `${this.o.stage}.`;
    const list = (async () => {
      const live: string[] = [];
      for await (const k of await this.members.keys(`${this.o.stage}.>`)) live.push(k.slice(prefix.length));
      return live;
    })();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), this.tickMs)));
    const live = await Promise.race([list, late]).finally(() => clearTimeout(timer));
    list.catch(() => undefined);
    return live ?? this.liveMembers;
  }

  private async round(): Promise<void> {
    this.fence();
    // Renewals first, and alongside the heartbeat: under CPU pressure every
    // await is slow, and a late renewal costs a partition.
    await Promise.all([this.renew(), this.heartbeat()]);
    // Stopped meanwhile: take nothing more (leave() releases what is held once this round ends).
    if (this.stopped) return;
    this.fence();
    const live = await this.listMembers();
    if (this.stopped) return;
    if (!live.includes(this.o.instanceId)) live.push(this.o.instanceId);
    this.liveMembers = [...live].sort();
    let pool: string[] = live;
    if (this.o.eligible) {
      this.advertised.set(this.o.instanceId, { ...this.o.advertise, instance: this.o.instanceId });
      const picked = this.o.eligible(live, this.advertised);
      if (picked.length > 0) pool = picked;
    }
    const target = new Set(assignPartitions(pool, this.o.partitions).get(this.o.instanceId) ?? []);
    for (const [p, h] of this.held) if (!target.has(p) && !h.releasing) h.releasing = true;
    await Promise.all([...target].filter((p) => !this.held.has(p)).map((p) => this.tryTake(p)));
    this.publish();
    this.settled = true;
  }

  /** How long after a renewal was sent the lease is trusted: well before the server lets it expire. */
  private get trustMs(): number {
    return this.o.ttlMs - this.tickMs / 2;
  }

  /**
   * Whether this instance may still act for partition `p` right now. The
   * runner asks before it handles a batch and before it acks, so even after a
   * long pause nothing is written on a lease that may have lapsed.
   */
  holds(p: number): boolean {
    const h = this.held.get(p);
    return h !== undefined && Date.now() - h.renewedAt < this.trustMs;
  }

  private lose(p: number, why: string, err: unknown): void {
    const h = this.held.get(p);
    if (h) this.lapsed.set(p, h.revision);
    this.held.delete(p);
    this.o.onError?.(why, err);
    this.lostSubject.next(p);
    // owned$ must show the partition gone, or a retake within the same round
    // would publish the same set again, distinctUntilChanged would swallow it,
    // and the runner (which dropped the partition on lost$) would never
    // consume it again while this instance holds its lease. Found by the
    // cluster test: all 16 leases held, nothing consumed.
    this.publish();
  }

  /** Give up, at once, every lease not renewed within the TTL. */
  private fence(): void {
    const now = Date.now();
    let changed = false;
    for (const [p, h] of this.held) {
      if (now - h.renewedAt >= this.trustMs) {
        this.lose(p, `lease of partition ${p} not renewed in time; giving it up`, new Error('lease expired'));
        changed = true;
      }
    }
    if (changed) this.publish();
  }

  private async renew(): Promise<void> {
    await Promise.all(
      [...this.held].map(async ([p, h]) => {
        const renewing = this.renewOne(p, h);
        h.renewing = renewing;
        await renewing;
        if (h.renewing === renewing) h.renewing = undefined;
      }),
    );
  }

  private async renewOne(p: number, h: Held): Promise<void> {
    // The server dates the entry after the request leaves, so its expiry is later than this.
    const sentAt = Date.now();
    try {
      h.revision = await this.leases.update(leaseKey(this.o.stage, p), this.leaseValue(), h.revision);
      h.renewedAt = sentAt;
    } catch (err) {
      // Somebody else holds it now (our lease lapsed): stop consuming it. Not if it was
      // released or retaken meanwhile: this renewal was of a lease no longer in hand.
      if (this.held.get(p) === h) this.lose(p, `lost the lease of partition ${p}`, err);
    }
  }

  private leaseValue(): string {
    const v: LeaseValue = { owner: this.o.instanceId, since: this.since };
    return JSON.stringify(v);
  }

  private async tryTake(p: number): Promise<void> {
    const startedAt = Date.now();
    const key = leaseKey(this.o.stage, p);
    const lapsed = this.lapsed.get(p);
    this.lapsed.delete(p);
    if (lapsed !== undefined) {
      try {
        // Ours until somebody writes the key or it expires: then the revision no longer matches.
        const revision = await this.leases.update(key, this.leaseValue(), lapsed);
        this.hold(p, revision, startedAt);
        return;
      } catch {
        // Taken by another member, or expired: create it like anybody else.
      }
    }
    try {
      const revision = await this.leases.create(key, this.leaseValue());
      this.hold(p, revision, startedAt);
    } catch {
      // Held by another member (still finishing, or dead and not yet expired).
    }
  }

  private hold(p: number, revision: number, renewedAt: number): void {
    const h: Held = { revision, renewedAt, releasing: this.stopped };
    this.held.set(p, h);
  }

  private publish(): void {
    const owned = new Set<number>();
    for (const [p, h] of this.held) if (!h.releasing) owned.add(p);
    this.subject.next(owned);
  }

  /** The runner finished partition `p` after it left `owned$`: release its lease. */
  async released(p: number): Promise<void> {
    this.lapsed.delete(p);
    const h = this.held.get(p);
    if (!h) return;
    this.held.delete(p);
    await h.renewing;
    try {
      await this.leases.delete(leaseKey(this.o.stage, p), { previousSeq: h.revision });
    } catch (err) {
      this.o.onError?.(`could not release the lease of partition ${p}`, err);
    }
  }

  /** Partitions this instance holds a lease for (owned or being released). */
  heldPartitions(): number[] {
    return [...this.held.keys()].sort((a, b) => a - b);
  }

  /** Stop taking partitions: everything leaves `owned$`; call `leave()` once the runner has finished. */
  relinquish(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    for (const h of this.held.values()) h.releasing = true;
    this.lapsed.clear();
    this.publish();
  }

  /** Release every lease still held and leave the member list. */
  async leave(): Promise<void> {
    this.relinquish();
    if (!this.members) return; // never started
    for (const w of this.watchers) w.stop();
    // A round under way may still be taking a lease (or writing the heartbeat):
    // release after it, or that lease would name this instance until its TTL.
    if (this.roundInFlight) await Promise.race([this.roundInFlight, new Promise((r) => setTimeout(r, this.o.ttlMs).unref())]);
    await Promise.all(this.heldPartitions().map((p) => this.released(p)));
    await this.members.delete(memberKey(this.o.stage, this.o.instanceId)).catch(() => undefined);
    this.subject.complete();
    this.lostSubject.complete();
  }
}
