/**
 * The edge where JetStream becomes RxJS: the messages of one durable
 * partition consumer as an Observable.
 *
 * It pulls with a fetch loop rather than `consume()` so a graceful stop is
 * exact: when `stop` is signalled no new pull is issued, the pull under way
 * is ended at once by draining its subscription (the server drops a pull
 * request nobody listens to, and whatever it sent before that still
 * arrives), the Observable completes, and the owner processes and acks
 * everything it received before handing the partition over. Unsubscribing
 * instead (a hard stop) nak's whatever still arrives, so the next owner gets
 * it at once rather than after the ack wait.
 *
 * Pulls are long (30 s) with idle heartbeats: a partition with nothing to
 * do costs the server one pull request per expiry and a heartbeat now and
 * then, and its owner no timers beyond the client's heartbeat check. A pull
 * the server lost (a restart, a new consumer leader) is noticed by missed
 * heartbeats, a lost connection by the connection itself.
 */
import type { JetStreamClient, JsMsg } from '@nats-io/jetstream';
import { Observable } from 'rxjs';

export interface PartitionMessagesOptions {
  /** Most messages one pull asks for (the consumer's max_ack_pending bounds it too). */
  maxMessages: number;
  /** How long one pull waits for messages. A graceful stop does not wait for it. */
  expiresMs: number;
  /**
   * How often the server reports on a pull that has nothing to deliver; two
   * missed in a row end the pull, and the loop pulls again.
   */
  heartbeatMs: number;
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

/** Default expiry of a pull: an idle partition costs one pull request per expiry. */
export const PullExpiresMs = 30_000;
/** Default idle heartbeat of a pull: a pull the server lost is noticed after two of these. */
export const PullHeartbeatMs = 5_000;

function isMissedHeartbeat(err: unknown): boolean {
  return err instanceof Error && /heartbeats missed/i.test(err.message);
}

/**
 * End a pull now without losing what it was sent: drain its subscription
 * (unsubscribe, then a round trip to the server; what arrives meanwhile is
 * still delivered) and the fetch ends once the drain is done. The server
 * delivers nothing more to a pull request without interest and drops it.
 * The fetch keeps its subscription to itself; if that changes, stop it
 * (what is still on its way then comes back after the ack wait, and the
 * partition's next owner restarts the consumer at its ack floor).
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
  const maxMessages = opts.maxMessages ?? 256;
  const expires = opts.expiresMs ?? PullExpiresMs;
  const heartbeat = opts.heartbeatMs ?? Math.min(PullHeartbeatMs, expires / 2);
  return new Observable<JsMsg>((subscriber) => {
    let unsubscribed = false;
    let current: { stop(): void } | undefined;
    // A graceful stop ends the pull under way at once instead of at its expiry.
    const onStop = () => {
      if (current) endPull(current);
    };
    opts.stop?.addEventListener('abort', onStop, { once: true });
    const run = async () => {
      const c = await js.consumers.get(stream, consumer);
      while (!unsubscribed && !opts.stop?.aborted) {
        const refused = opts.mayPull?.();
        if (refused) throw refused;
        const batch = await c.fetch({ max_messages: maxMessages, expires, idle_heartbeat: heartbeat });
        if (unsubscribed || opts.stop?.aborted) {
          // Stopped while the fetch was set up: its pull request goes out
          // only once it is iterated, so stopping it now sends none.
          batch.stop();
          break;
        }
        current = batch;
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
              if (current === batch && info.num_waiting === 0) batch.stop();
            })
            .catch(() => undefined);
        }, expires + ORPHAN_CHECK_MS);
        try {
          for await (const m of batch) {
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
      current?.stop();
    };
  });
}
