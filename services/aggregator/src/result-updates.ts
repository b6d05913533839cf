/**
 * A key's result as Server-Sent Events, on a KV watch of its entry in
 * `mesh_aggregates`: first the result as it is (an empty one when the key
 * has none yet), then one `result` event per change, each carrying what
 * `GET /v1/aggregates/:name/:key` would answer at that revision (`id:` is
 * the KV revision). A comment line goes out every `heartbeatMs` so proxies
 * and clients see the stream alive while nothing changes.
 *
 * The watch is an ordered push consumer on the bucket's stream, made here
 * rather than by `kv.watch()` so that its teardown can delete it: when the
 * client goes away the heartbeat is cleared, the subscription stopped and
 * the consumer deleted at once (a stopped `kv.watch()` leaves its consumer on
 * the server for its 5-minute inactivity threshold, one per client that ever
 * came). When the watch ends (the service is stopping, NATS went away) the
 * response ends and the client may reconnect.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { DeliverPolicy, type JetStreamClient, type JsMsg } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import { aggregateKvKey, Buckets, kvStream, kvSubject } from '@mesh/contracts';

export interface UpdateStreamOptions {
  js: JetStreamClient;
  results: KV;
  name: string;
  key: string;
  heartbeatMs: number;
}

export async function streamResultUpdates(req: IncomingMessage, res: ServerResponse, o: UpdateStreamOptions): Promise<void> {
  const kvKey = aggregateKvKey(o.name, o.key);
  const empty = JSON.stringify({ name: o.name, key: o.key, windows: [] });
  // The watch first: an update made while the current value is read then waits in it, and comes after.
  const consumer = await o.js.consumers.getPushConsumer(kvStream(Buckets.aggregates), {
    // One subject as a string: the single filter subject nats-server 2.9 takes.
    filter_subjects: kvSubject(Buckets.aggregates, kvKey),
    deliver_policy: DeliverPolicy.LastPerSubject,
  });
  const messages = await consumer.consume();
  let open = true;
  const heartbeat = setInterval(() => res.write(': heartbeat\n\n'), o.heartbeatMs);
  const teardown = () => {
    if (!open) return;
    open = false;
    clearInterval(heartbeat);
    messages.stop();
    // Gone already when NATS is away or the service is stopping: nothing to undo then.
    consumer.delete().catch(() => undefined);
  };
  req.on('close', teardown);
  res.on('close', teardown);
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
  res.write(`: updates of ${o.name}/${o.key}\n\n`);
  try {
    // An existing result comes from the watch (its last value); only an absent one is sent from here.
    const current = await o.results.get(kvKey);
    if (!current || current.operation !== 'PUT') res.write(event(current?.revision ?? 0, empty));
    for await (const m of messages) {
      if (!open) break;
      res.write(event(m.seq, text(m) ?? empty));
    }
  } finally {
    teardown();
    res.end();
  }
}

/** The stored result, or undefined for a delete or purge marker (the KV operation header). */
function text(m: JsMsg): string | undefined {
  const operation = m.headers?.get('KV-Operation');
  return operation === 'DEL' || operation === 'PURGE' || m.data.length === 0 ? undefined : m.string();
}

function event(revision: number, data: string): string {
  // The stored JSON is one line (JSON.stringify), so one data line carries it.
  return `id: ${revision}\nevent: result\ndata: ${data}\n\n`;
}
