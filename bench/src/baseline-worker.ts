/**
 * One process of the raw baseline, forked by raw-baseline.ts: the same four
 * hops as the mesh written with the bare NATS client and nothing else.
 *
 *   producer ─► stream 1 ─► relay 1 ─► stream 2 ─► relay 2 ─► stream 3 ─► relay 3 ─► stream 4 ─► counter
 *
 * A relay consumes its stream (consume() with a callback), publishes each
 * message unchanged to the next stream with a message id derived from the
 * input sequence (as the mesh's stages do, so a redelivery is deduplicated)
 * and acks the input once the publish is acknowledged. The counter acks and
 * counts events (header `Bench-Count`: events in the message).
 *
 * Talks to its parent over IPC: sends `ready`, then `done` (counter) or
 * `published` (producer); takes `start` (producer) and `stop`.
 */
import { connect } from '@nats-io/transport-node';
import { jetstream, type JsMsg } from '@nats-io/jetstream';
import { headers } from '@nats-io/nats-core';
import { credentialOptions, orderEvent } from '@mesh/testing';

export type BaselineRole =
  | { role: 'producer'; subject: string; events: number; perMessage: number; eventBytes: number; inFlight: number }
  | { role: 'relay'; hop: number; stream: string; consumer: string; next: string; pull: number }
  | { role: 'counter'; stream: string; consumer: string; events: number; pull: number };

export type BaselineWorkerConfig = BaselineRole & { natsUrl: string; auth?: Record<string, string> };

export type FromWorker = { type: 'ready' } | { type: 'published'; messages: number } | { type: 'done'; events: number } | { type: 'error'; message: string };
export type ToWorker = { type: 'start' } | { type: 'stop' };

export const CountHeader = 'Bench-Count';

function send(msg: FromWorker): void {
  process.send?.(msg);
}

function payload(first: number, count: number, pad: string): Uint8Array {
  const events = Array.from({ length: count }, (_, i) => {
    const n = first + i;
    const e = orderEvent(`k${n % 1000}`, n, (n % 10) + 1);
    if (pad) (e.data as Record<string, unknown>).pad = pad;
    return e;
  });
  return Buffer.from(JSON.stringify(count === 1 ? events[0] : events));
}

async function main(cfg: BaselineWorkerConfig): Promise<void> {
  const nc = await connect({ servers: cfg.natsUrl, name: `bench-baseline-${cfg.role}`, ...credentialOptions(cfg.auth ?? {}) });
  const js = jetstream(nc, { timeout: 30_000 });
  const stop = async () => {
    await nc.drain().catch(() => undefined);
    process.exit(0);
  };
  process.on('message', (m: ToWorker) => {
    if (m.type === 'stop') void stop();
    if (m.type === 'start' && cfg.role === 'producer') void produce(cfg);
  });
  // Ctrl-C reaches the whole process group; the parent stops us by pid as well.
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());

  async function produce(c: Extract<BaselineRole, { role: 'producer' }>) {
    const messages = Math.ceil(c.events / c.perMessage);
    const pad = 'x'.repeat(c.eventBytes);
    let next = 0;
    const loop = async () => {
      while (next < messages) {
        const i = next++;
        const count = Math.min(c.perMessage, c.events - i * c.perMessage);
        const h = headers();
        h.set(CountHeader, String(count));
        await js.publish(c.subject, payload(i * c.perMessage + 1, count, pad), { msgID: `p:${i}`, headers: h });
      }
    };
    await Promise.all(Array.from({ length: c.inFlight }, loop));
    send({ type: 'published', messages });
  }

  if (cfg.role === 'relay') {
    const consumer = await js.consumers.get(cfg.stream, cfg.consumer);
    await consumer.consume({
      max_messages: cfg.pull,
      callback: (m: JsMsg) => {
        const h = headers();
        h.set(CountHeader, m.headers?.get(CountHeader) ?? '1');
        js.publish(cfg.next, m.data, { msgID: `r${cfg.hop}:${m.seq}`, headers: h }).then(
          () => m.ack(),
          () => m.nak(),
        );
      },
    });
  }

  if (cfg.role === 'counter') {
    const consumer = await js.consumers.get(cfg.stream, cfg.consumer);
    let events = 0;
    let reported = false;
    await consumer.consume({
      max_messages: cfg.pull,
      callback: (m: JsMsg) => {
        events += Number(m.headers?.get(CountHeader) ?? '1');
        m.ack();
        if (!reported && events >= cfg.events) {
          reported = true;
          send({ type: 'done', events });
        }
      },
    });
  }
  send({ type: 'ready' });
}

main(JSON.parse(process.argv[2]) as BaselineWorkerConfig).catch((err: Error) => {
  send({ type: 'error', message: err.message });
  process.exit(1);
});
