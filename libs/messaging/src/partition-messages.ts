/**
 * The edge where JetStream becomes RxJS: the messages of one durable
 * partition consumer as an Observable.
 *
 * It pulls with a fetch loop rather than `consume()` so a graceful stop is
 * exact: when `stop` is signalled no new pull is issued, the pull under way
 * delivers what it brought, and the Observable completes, so the owner
 * processes and acks everything it received before handing the partition
 * over. Unsubscribing instead (a hard stop) nak's whatever still arrives, so
 * the next owner gets it at once rather than after the ack wait.
 */
import type { JetStreamClient, JsMsg } from '@nats-io/jetstream';
import { Observable } from 'rxjs';

export interface PartitionMessagesOptions {
  /** Most messages one pull asks for (the consumer's max_ack_pending bounds it too). */
  maxMessages: number;
  /** How long one pull waits for messages; also the longest a graceful stop waits. */
  expiresMs: number;
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

function isMissedHeartbeat(err: unknown): boolean {
  return err instanceof Error && /heartbeats missed/i.test(err.message);
}

export function partitionMessages(js: JetStreamClient, stream: string, consumer: string, opts: Partial<PartitionMessagesOptions> = {}): Observable<JsMsg> {
  const maxMessages = opts.maxMessages ?? 256;
  const expires = opts.expiresMs ?? 2_000;
  return new Observable<JsMsg>((subscriber) => {
    let unsubscribed = false;
    let current: { stop(): void } | undefined;
    const run = async () => {
      const c = await js.consumers.get(stream, consumer);
      while (!unsubscribed && !opts.stop?.aborted) {
        const refused = opts.mayPull?.();
        if (refused) throw refused;
        const batch = await c.fetch({ max_messages: maxMessages, expires });
        current = batch;
        // nats-server 2.9 can drop a pull request that expires as a message
        // arrives without sending the 408 that ends the fetch; the fetch
        // then waits for two missed heartbeats (2 s) while the partition's
        // messages pile up (bench/dist/hops.js: 1-2 s stalls at 250-500
        // events/s). Shortly after the expiry, ask the server: the answer
        // comes after everything it delivered to this pull (one connection,
        // in order), so if it holds no pull request for the consumer any
        // more, nothing else can come and the fetch can end.
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
    run().then(
      () => subscriber.complete(),
      (err) => subscriber.error(err),
    );
    return () => {
      unsubscribed = true;
      current?.stop();
    };
  });
}
