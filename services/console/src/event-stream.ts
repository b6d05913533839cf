/**
 * Server-Sent Events on one response: named events with JSON data, a
 * comment every `heartbeatMs` so proxies and the page see the stream alive,
 * and one teardown when the page goes away (or the console stops it).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

export interface EventStream {
  send(event: string, data: unknown): void;
  close(): void;
  readonly closed: boolean;
}

export function openEventStream(req: IncomingMessage, res: ServerResponse, onClose: () => void, heartbeatMs = 15_000): EventStream {
  let closed = false;
  const heartbeat = setInterval(() => res.write(': heartbeat\n\n'), heartbeatMs);
  const teardown = () => {
    if (closed) return;
    closed = true;
    clearInterval(heartbeat);
    onClose();
  };
  req.on('close', teardown);
  res.on('close', teardown);
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
  res.write(': mesh console\n\n');
  return {
    send(event, data) {
      if (!closed) res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    },
    close() {
      teardown();
      res.end();
    },
    get closed() {
      return closed;
    },
  };
}
