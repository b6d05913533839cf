/**
 * A stage instance's part in `mesh replay`: it watches `replay.epoch` in
 * `mesh_checkpoints` and stands between partition ownership and the stage
 * runner.
 *
 * - pause: the runner is given no partitions, so it finishes, acks and
 *   checkpoints what it has in hand and stops them; the leases stay held
 *   (no other instance takes the partitions meanwhile). Once every
 *   partition is stopped the instance acks `replay.ack.<stage>.<instance>`
 *   with the epoch, and the CLI may reset what the stages derived.
 * - run: the runner gets its partitions back and opens them from the (now
 *   reset) checkpoints; outputs carry the epoch in their ids.
 *
 * Until the key has been read the runner gets nothing, so an instance that
 * starts or restarts mid-replay obeys the current phase before it consumes
 * anything. A mesh that never replayed has no key: epoch 0, ids unchanged.
 */
import type { NatsConnection } from '@nats-io/nats-core';
import { Kvm, type KV, type KvEntry } from '@nats-io/kv';
import { BehaviorSubject, combineLatest, filter, map, tap, type Observable } from 'rxjs';
import { Buckets, parseReplaySignal, ReplayEpochKey, replayAckKey, type ReplayAck, type ReplaySignal, type Stage } from '@mesh/contracts';
import type { Logger } from './logger';

export interface ReplayGateOptions {
  nc: NatsConnection;
  stage: Stage;
  instanceId: string;
  /** The partitions ownership gives this instance, as they change. */
  owned$: Observable<ReadonlySet<number>>;
  /** Release a partition's lease (ownership's `released`). */
  release(partition: number): void | Promise<void>;
  log: Logger;
}

const None: ReadonlySet<number> = new Set();
const AckRetryMs = 500;

export class ReplayGate {
  private kv?: KV;
  private watcher?: { stop(): void };
  private revision = 0;
  private stopped = false;
  /** undefined until the key has been read: the runner gets nothing before. */
  private readonly paused = new BehaviorSubject<boolean | undefined>(undefined);
  private latestOwned: ReadonlySet<number> = None;
  /** Partitions stopped for the pause and not yet finished. */
  private stopping = new Set<number>();
  private idle?: () => void;
  private phases: Promise<void> = Promise.resolve();
  private assigned: () => number[] = () => [];
  /** The epoch outputs are named with (epochMsgId) when a partition opens now. */
  epoch = 0;
  /** The signal last obeyed, for `GET /v1/partitions`. */
  signal?: ReplaySignal;

  /** What the runner should consume: ownership's partitions, or none while paused. */
  readonly owned$: Observable<ReadonlySet<number>>;

  constructor(private readonly o: ReplayGateOptions) {
    this.owned$ = combineLatest([
      o.owned$.pipe(tap((owned) => this.ownershipChanged(owned))),
      this.paused.pipe(filter((p): p is boolean => p !== undefined)),
    ]).pipe(map(([owned, paused]) => (paused ? None : owned)));
  }

  /** The runner, whose partitions a pause waits for. */
  attach(runner: { assigned(): number[] }): void {
    this.assigned = () => runner.assigned();
  }

  /** Read the current phase (and keep watching it) before the instance takes any partition. */
  async start(): Promise<void> {
    // Direct get: the one read the least-privilege config grants for this key.
    this.kv = await new Kvm(this.o.nc).open(Buckets.checkpoints, { allow_direct: true });
    const watch = await this.kv.watch({ key: ReplayEpochKey });
    this.watcher = watch;
    void (async () => {
      for await (const e of watch) this.receive(e);
    })().catch((err) => this.o.log.warn('replay signal watch ended', { error: err }));
    // The watch delivers the current value too, but a get says for sure whether there is one.
    const current = await this.kv.get(ReplayEpochKey);
    if (current) this.receive(current);
    if (this.revision === 0) this.paused.next(false);
    await this.phases;
  }

  stop(): void {
    this.stopped = true;
    this.watcher?.stop();
    this.idle?.();
  }

  private receive(e: KvEntry): void {
    if (e.revision <= this.revision || e.operation !== 'PUT') return;
    const signal = parseReplaySignal(e.string());
    if (!signal) {
      this.o.log.error(`ignoring ${ReplayEpochKey}: not a replay signal ({epoch, from, phase: pause|run})`, { value: e.string().slice(0, 200) });
      return;
    }
    this.revision = e.revision;
    this.phases = this.phases.then(() => this.enter(signal)).catch((err) => this.o.log.error('replay phase failed', { error: err, ...signal }));
  }

  private async enter(signal: ReplaySignal): Promise<void> {
    if (signal.phase === 'pause') {
      this.o.log.info('replay: pausing partitions', { epoch: signal.epoch, from: signal.from });
      const finished = new Promise<void>((resolve) => (this.idle = resolve));
      this.stopping = new Set(this.assigned());
      this.paused.next(true);
      if (this.stopping.size === 0) this.idle?.();
      await finished;
      this.idle = undefined;
    } else {
      this.epoch = signal.epoch;
      this.paused.next(false);
      this.o.log.info('replay: consuming again', { epoch: signal.epoch, from: signal.from });
    }
    this.signal = signal;
    await this.ack({ epoch: signal.epoch, phase: signal.phase });
  }

  /** Ack until it is stored: the CLI waits for it. */
  private async ack(ack: ReplayAck): Promise<void> {
    const key = replayAckKey(this.o.stage, this.o.instanceId);
    while (!this.stopped) {
      try {
        await this.kv!.put(key, JSON.stringify(ack));
        return;
      } catch (err) {
        this.o.log.warn('replay: could not ack; retrying', { key, error: err });
        await new Promise((r) => setTimeout(r, AckRetryMs));
      }
    }
  }

  /**
   * The runner finished partition `p`. Stopped for a pause while this
   * instance still owns it: keep the lease. Otherwise release it as usual.
   */
  released(p: number): void | Promise<void> {
    const forPause = this.stopping.delete(p);
    if (forPause && this.stopping.size === 0) this.idle?.();
    if (this.paused.value === true && this.latestOwned.has(p)) return;
    return this.o.release(p);
  }

  /** While paused, a partition ownership gives up (a member joined or left) is released here: the runner is not running it. */
  private ownershipChanged(owned: ReadonlySet<number>): void {
    const before = this.latestOwned;
    this.latestOwned = owned;
    if (this.paused.value !== true) return;
    for (const p of before) {
      if (!owned.has(p) && !this.stopping.has(p))
        void Promise.resolve(this.o.release(p)).catch((err) => this.o.log.warn('releasing a partition failed', { partition: p, error: err }));
    }
  }
}
