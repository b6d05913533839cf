/**
 * Packs the events of concurrent requests into shared envelopes, the
 * producer side of batch envelopes (as Kafka's producer batches records).
 *
 * While a round of publishes is in flight, requests that arrive wait and
 * are packed together into the next round; an idle batcher publishes at the
 * next turn of the event loop. Light load: no added latency, small
 * envelopes. Heavy load: large envelopes, few messages per event. A request
 * resolves once every envelope holding its events is stored, and rejects if
 * any of them could not be (its other events may be stored: a retry is
 * deduplicated).
 */
import type { CloudEvent } from '@mesh/contracts';
import type { EnvelopeOut } from '@mesh/messaging';
import { packEnvelopes, type PackOptions } from './prepare-events';

export interface BatcherOptions extends PackOptions {
  /** Rounds of publishes under way at once. */
  maxInFlight: number;
}

interface Waiting {
  events: readonly CloudEvent[];
  sizes: ReadonlyMap<CloudEvent, number>;
  json?: ReadonlyMap<CloudEvent, string>;
  resolve(): void;
  reject(err: unknown): void;
}

export class EnvelopeBatcher {
  private queue: Waiting[] = [];
  private inFlight = 0;
  private scheduled = false;

  constructor(
    private readonly publish: (envelope: EnvelopeOut) => Promise<unknown>,
    private readonly o: BatcherOptions,
  ) {}

  /**
   * Store events (already valid); `sizes` gives each one's JSON size in
   * bytes, `json` (optional) its JSON, which then makes the envelope's body
   * as it is instead of serializing the event again.
   */
  submit(events: readonly CloudEvent[], sizes: ReadonlyMap<CloudEvent, number>, json?: ReadonlyMap<CloudEvent, string>): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ events, sizes, json, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight >= this.o.maxInFlight || this.queue.length === 0) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.round();
    });
  }

  private round(): void {
    if (this.inFlight >= this.o.maxInFlight || this.queue.length === 0) return;
    const waiting = this.queue;
    this.queue = [];
    this.inFlight++;
    const owner = new Map<CloudEvent, Waiting>();
    for (const w of waiting) for (const e of w.events) owner.set(e, w);
    const failed = new Map<Waiting, unknown>();
    const all = waiting.flatMap((w) => w.events);
    const withJson = waiting.every((w) => w.json !== undefined);
    const envelopes = packEnvelopes(all, (e) => owner.get(e)!.sizes.get(e)!, this.o, withJson ? (e) => owner.get(e)!.json!.get(e)! : undefined);
    void Promise.all(
      envelopes.map((envelope) =>
        this.publish(envelope).catch((err) => {
          for (const e of envelope.events) if (!failed.has(owner.get(e)!)) failed.set(owner.get(e)!, err);
        }),
      ),
    ).then(() => {
      this.inFlight--;
      for (const w of waiting) {
        if (failed.has(w)) w.reject(failed.get(w));
        else w.resolve();
      }
      this.schedule();
    });
  }
}
