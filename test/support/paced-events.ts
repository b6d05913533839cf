/**
 * A stream of order events posted in requests of 100 with a pause between
 * them, so a test can act mid-stream (kill a process, stop a database) and
 * wait on how far the stream got rather than on a clock.
 */
import { orderEvent, postEvents, type Format } from '@mesh/testing';

export interface PacedEvents {
  /** Events answered 202 so far. */
  sent(): number;
  /** Resolves once every event is stored. */
  done: Promise<void>;
}

export function pacedEvents(
  ingestUrl: string,
  o: { total: number; keyOf: (n: number) => string; amountOf: (n: number) => number; format: Format; pauseMs: number },
): PacedEvents {
  let sent = 0;
  const done = (async () => {
    for (let first = 0; first < o.total; first += 100) {
      await postEvents(
        ingestUrl,
        Array.from({ length: 100 }, (_, i) => orderEvent(o.keyOf(first + i), first + i, o.amountOf(first + i))),
        o.format,
        120_000,
      );
      sent += 100;
      await new Promise((r) => setTimeout(r, o.pauseMs));
    }
  })();
  return { sent: () => sent, done };
}
