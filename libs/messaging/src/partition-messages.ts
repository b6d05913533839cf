/**
 * The edge where JetStream becomes RxJS: the messages of one durable
 * partition consumer as an Observable.
 *
 * It pulls with a fetch loop rather than `consume()` so a graceful stop is
 * exact: when `stop` is signalled no new pull is issued, the pull under way
 * ends (see below), the Observable completes, and the owner processes and
 * acks everything it received before handing the partition over.
 * Unsubscribing instead (a hard stop) nak's whatever still arrives, so the
 * next owner gets it at once rather than after the ack wait.
 *
 * Two kinds of pull, so that an idle partition costs next to nothing:
 * - busy: up to `maxMessages`, expiring after `expiresMs` (2 s). A graceful
 *   stop lets it run out: it ends with the server's 408, sent after
 *   everything the pull delivered, so nothing is left on its way.
 * - idle: after a busy pull that brought nothing, one message, expiring
 *   after `idleExpiresMs` (30 s) with an idle heartbeat. An idle partition
 *   costs the server one pull request per 30 s and a heartbeat per 5 s
 *   (instead of a pull, and often an info request, every 2 s). Its first
 *   message ends it and the next pull is busy again. A graceful stop ends
 *   it at once by draining its subscription: what the server sent before it
 *   saw the unsubscribe still arrives, and it drops a pull request nobody
 *   listens to. A message it sends in that very instant goes nowhere and
 *   stays unacked: the partition's next owner finds it pending and restarts
 *   the consumer at its ack floor, as after a crash.
 * A pull the server lost (a restart, a new consumer leader) is noticed by
 * missed heartbeats, a lost connection by the client.
 */
import type { JetStreamClient, JsMsg } from '@nats-io/jetstream';
import { Observable } from 'rxjs';

export interface PartitionMessagesOptions {
  /** Most messages one busy pull asks for (the consumer's max_ack_pending bounds it too). */
  maxMessages: number;
  /** How long a busy pull waits for messages; also the longest a graceful stop waits for one. */
  expiresMs: number;
  /** How long an idle pull (one message, after a busy pull that brought nothing) waits. A graceful stop does not wait for it. */
  idleExpiresMs: number;
  /** How often the server reports on an idle pull; two missed in a row end it, and the loop pulls again. */
  idleHeartbeatMs: number;
  /** Aborting it ends the loop gracefully. */
  stop?: AbortSignal;
  /**
   * Asked before every pull; false ends the Observable with the error it
   * returns instead. A pull request stays with the server until it expires,
   * so one sent by an owner that has lost the partition (after a long pause,
   * say) would take messages the new owner is waiting for, and they would
   * come back to it out of order, after the ack wait.
   */
  mayPull?(): Error | undefined;
}

/** How long after a pull's expiry the loop checks whether the server dropped it without saying so. */
const ORPHAN_CHECK_MS = 50;

export const PullDefaults: Omit<PartitionMessagesOptions, 'stop' | 'mayPull'> = {
  maxMessages: 256,
  expiresMs: 2_000,
  idleExpiresMs: 30_000,
  idleHeartbeatMs: 5_000,
};

function isMissedHeartbeat(err: unknown): boolean {
  return err instanceof Error && /heartbeats missed/i.test(err.message);
}

/**
 * End a pull now: drain its subscription (unsubscribe, then a round trip to
 * the server; what arrives meanwhile is still delivered), and the fetch
 * ends once the drain is done. The fetch keeps its subscription to itself;
 * should that change, it is stopped instead.
 */
function endPull(batch: { stop(): void }): void {
  const sub = (batch as { sub?: { drain?: () => Promise<void>; isClosed?: () => boolean } }).sub;
  if (typeof sub?.drain !== 'function' || sub.isClosed?.() !== false) {
    batch.stop();
    return;
  }
  sub.drain().catch(() => batch.stop());
}

export function partitionMessages(js: JetStreamClient, stream: string, consumer: string, opts: Partial<PartitionMessagesOptions> = {}): Observable<JsMsg> {
  const o = { ...PullDefaults, ...opts };
  return new Observable<JsMsg>((subscriber) => {
    let unsubscribed = false;
    let current: { batch: { stop(): void }; idle: boolean } | undefined;
    // A graceful stop ends an idle pull at once; a busy one runs out (at most `expiresMs`).
    const onStop = () => {
      if (current?.idle) endPull(current.batch);
    };
    opts.stop?.addEventListener('abort', onStop, { once: true });
    const run = async () => {
      const c = await js.consumers.get(stream, consumer);
      let idle = false;
      while (!unsubscribed && !opts.stop?.aborted) {
        const refused = opts.mayPull?.();
        if (refused) throw refused;
        const expires = idle ? o.idleExpiresMs : o.expiresMs;
        const batch = await c.fetch(
          idle ? { max_messages: 1, expires, idle_heartbeat: o.idleHeartbeatMs } : { max_messages: o.maxMessages, expires, idle_heartbeat: expires / 2 },
        );
        if (unsubscribed || opts.stop?.aborted) {
          // Stopped while the fetch was set up: its pull request goes out
          // only once it is iterated, so stopping it now sends none.
          batch.stop();
          break;
        }
        current = { batch, idle };
        // nats-server 2.9 can drop a pull request that expires as a message
        // arrives without sending the 408 that ends the fetch; the fetch
        // would then wait for two missed heartbeats while the partition's
        // messages pile up (bench/dist/hops.js: 1-2 s stalls at 250-500
        // events/s). Shortly after the expiry, ask the server: the answer
        // comes after everything it delivered to this pull (one connection,
        // in order), so if it holds no pull request for the consumer any
        // more, nothing else can come and the fetch can end. A pull that
        // ended by itself (its 408, a full batch, a stop) asks nothing.
        const orphanCheck = setTimeout(() => {
          c.info()
            .then((info) => {
              if (current?.batch === batch && info.num_waiting === 0) batch.stop();
            })
            .catch(() => undefined);
        }, expires + ORPHAN_CHECK_MS);
        let received = 0;
        try {
          for await (const m of batch) {
            received++;
            if (unsubscribed) m.nak();
            else subscriber.next(m);
          }
        } catch (err) {
          // Missed heartbeats end this pull, not the partition: under CPU load
          // the client's timers fire late. A server that is really gone makes
          // the next fetch fail, and that does end it.
          if (!isMissedHeartbeat(err)) throw err;
          await new Promise((r) => setTimeout(r, 100));
        } finally {
          clearTimeout(orphanCheck);
        }
        current = undefined;
        idle = received === 0;
      }
    };
    run()
      .finally(() => opts.stop?.removeEventListener('abort', onStop))
      .then(
        () => subscriber.complete(),
        (err) => subscriber.error(err),
      );
    return () => {
      unsubscribed = true;
      opts.stop?.removeEventListener('abort', onStop);
      current?.batch.stop();
    };
  });
}
