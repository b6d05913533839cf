/**
 * A key's result as Server-Sent Events, on a KV watch of its entry in
 * `mesh_aggregates`: first the result as it is (an empty one when the key
 * has none yet), then one `result` event per change, each carrying what
 * `GET /v1/aggregates/:name/:key` would answer at that revision (`id:` is
 * the KV revision). A comment line goes out every `heartbeatMs` so proxies
 * and clients see the stream alive while nothing changes.
 *
 * Teardown: when the client goes away the watch (an ordered consumer on the
 * server) is stopped and the heartbeat cleared; when the watch ends (the
 * service is stopping, NATS went away) the response ends and the client may
 * reconnect.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { KV, KvEntry } from '@nats-io/kv';
import { aggregateKvKey } from '@mesh/contracts';

export interface UpdateStreamOptions {
  results: KV;
  name: string;
  key: string;
  heartbeatMs: number;
}

export async function streamResultUpdates(req: IncomingMessage, res: ServerResponse, o: UpdateStreamOptions): Promise<void> {
  const kvKey = aggregateKvKey(o.name, o.key);
  const empty = JSON.stringify({ name: o.name, key: o.key, windows: [] });
  // The watch first: an update made while the current value is read then waits in it, and comes after.
  const watcher = await o.results.watch({ key: kvKey });
  let open = true;
  const heartbeat = setInterval(() => res.write(': heartbeat\n\n'), o.heartbeatMs);
  const teardown = () => {
    if (!open) return;
    open = false;
    clearInterval(heartbeat);
    watcher.stop();
  };
  req.on('close', teardown);
  res.on('close', teardown);
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
  res.write(`: updates of ${o.name}/${o.key}\n\n`);
  try {
    // An existing result comes from the watch (its last value); only an absent one is sent from here.
    const current = await o.results.get(kvKey);
    if (!current || current.operation !== 'PUT') res.write(event(current?.revision ?? 0, empty));
    for await (const entry of watcher) {
      if (!open) break;
      res.write(event(entry.revision, text(entry) ?? empty));
    }
  } finally {
    teardown();
    res.end();
  }
}

function text(entry: KvEntry): string | undefined {
  return entry.operation === 'PUT' && entry.length > 0 ? entry.string() : undefined;
}

function event(revision: number, data: string): string {
  // The stored JSON is one line (JSON.stringify), so one data line carries it.
  return `id: ${revision}\nevent: result\ndata: ${data}\n\n`;
}
