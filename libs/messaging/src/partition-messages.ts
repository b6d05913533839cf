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
}

function isMissedHeartbeat(err: unknown): boolean {
  return err instanceof Error && /heartbeats missed/i.test(err.message);
}

export function partitionMessages(
  js: JetStreamClient,
  stream: string,
  consumer: string,
  opts: Partial<PartitionMessagesOptions> = {},
): Observable<JsMsg> {
  const maxMessages = opts.maxMessages ?? 256;
  const expires = opts.expiresMs ?? 2_000;
  return new Observable<JsMsg>((subscriber) => {
    let unsubscribed = false;
    let current: { stop(): void } | undefined;
    const run = async () => {
      const c = await js.consumers.get(stream, consumer);
      while (!unsubscribed && !opts.stop?.aborted) {
        const batch = await c.fetch({ max_messages: maxMessages, expires });
        current = batch;
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
