/**
 * Rebuilds a partition's dedup window when the router takes the partition:
 * it reads, from the stream itself, the events of the partition stored in
 * the window before the consumer's ack floor (everything after the floor
 * will be delivered again and fill the window as it goes).
 */
import { DeliverPolicy, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { decodeEnvelope, decodeIndex, Headers, MalformedEnvelopeError, Streams, Subjects } from '@mesh/contracts';
import { DedupWindow } from './dedup-window';

export async function rebuildDedup(
  js: JetStreamClient,
  jsm: JetStreamManager,
  partition: number,
  windowMs: number,
  floor: number,
): Promise<{ window: DedupWindow; scanned: number }> {
  const window = new DedupWindow(windowMs);
  if (floor === 0) return { window, scanned: 0 };

  const last = await jsm.streams.getMessage(Streams.ingest, { seq: floor }).catch(() => null);
  const endMs = last ? last.time.getTime() : Date.now();
  const consumer = await js.consumers.get(Streams.ingest, {
    filter_subjects: Subjects.ingestPartition(partition),
    deliver_policy: DeliverPolicy.StartTime,
    opt_start_time: new Date(endMs - windowMs).toISOString(),
  });
  let scanned = 0;
  try {
    for (;;) {
      const batch = await consumer.fetch({ max_messages: 1000, expires: 1000 });
      let got = 0;
      let done = false;
      for await (const m of batch) {
        got++;
        if (m.seq > floor) {
          // Past the floor: stop now rather than wait for the fetch to expire
          // (a takeover used to wait a whole second here).
          done = true;
          break;
        }
        scanned++;
        const at = Math.floor(Number(m.info.timestampNanos) / 1e6);
        if (m.headers?.has(Headers.redrive)) continue; // as live: redriven events are not remembered
        try {
          // As live: by the index when the envelope has one (its body unread), else by the events.
          const index = m.headers?.get(Headers.index);
          for (const e of index ? decodeIndex(index, m.data.byteLength) : decodeEnvelope(m.data)) window.seen(DedupWindow.keyOf(e.source, e.id), at);
        } catch (err) {
          if (!(err instanceof MalformedEnvelopeError)) throw err;
        }
        if (m.seq === floor) {
          done = true;
          break;
        }
      }
      if (done || got === 0) break;
    }
  } finally {
    await consumer.delete().catch(() => undefined);
  }
  return { window, scanned };
}
