/**
 * `node bench/dist/server-ops.js [events/s|max] [seconds] [events per request]`:
 * what the mesh asks of nats-server per event. On a fresh nats-server with
 * the four services it offers the load twice (the first run warms up), the
 * second under a `>` subscription that counts every message the server
 * routes, by kind: envelopes stored per stream, KV puts per bucket, acks,
 * publish acks and other replies (`_INBOX`), pulls, API calls. `max` posts
 * as fast as 16 requests in flight go.
 *
 * The subscription sees what clients publish and what the server delivers
 * to subscribers: a stream's envelopes show twice (the publish, and the
 * delivery to the pull consumer).
 */
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/nats-core';
import { startMesh, startNatsServer, stopAll, type ServiceName, type ServiceProcess } from '@mesh/testing';
import { IngestClient } from './ingest-client';
import { offerLoad, type OfferedLoad } from './offered-load';
import { Workload } from './workload';

const rateArg = process.argv[2] ?? '500';
const rate = rateArg === 'max' ? Number.POSITIVE_INFINITY : Number(rateArg);
const seconds = Number(process.argv[3] ?? 10);
const perRequest = Number(process.argv[4] ?? 1);
const load: OfferedLoad = { rate, batch: perRequest, concurrency: perRequest === 1 ? 64 : 16, durationMs: seconds * 1000 };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The kind of a subject, coarse enough to read: `$KV.<bucket>`, `$JS.ACK.<stream>`, `$JS.API.<verb>`, `mesh.<stage>`, `_INBOX`. */
function kindOf(subject: string): string {
  const t = subject.split('.');
  if (t[0] === '_INBOX') return '_INBOX (publish acks, API answers)';
  if (t[0] === '$KV') return `$KV.${t[1]} (puts)`;
  if (t[0] === '$JS' && t[1] === 'ACK') return `$JS.ACK.${t[2]} (acks)`;
  if (t[0] === '$JS' && t[1] === 'API') return `$JS.API.${t.slice(2, 5).join('.')}`;
  if (t[0] === 'mesh') return `${t.slice(0, 2).join('.')} (published, delivered)`;
  return t.slice(0, 2).join('.');
}

async function main(): Promise<void> {
  if (!(rate > 0) || !(seconds > 0) || !(perRequest > 0)) {
    process.stderr.write(
      `server-ops: usage: node bench/dist/server-ops.js [events/s|max] [seconds] [events per request]; got ${process.argv.slice(2).join(' ')}\n`,
    );
    process.exit(2);
  }
  const server = await startNatsServer();
  let services: Record<ServiceName, ServiceProcess> | undefined;
  let nc: NatsConnection | undefined;
  let client: IngestClient | undefined;
  try {
    services = await startMesh(server.url);
    client = new IngestClient(services.ingest.url, load.concurrency);
    const workload = new Workload(1000, 1, 100);
    await offerLoad(client, workload, load, () => undefined);
    await sleep(2_000);

    nc = await connect({ servers: server.url, name: 'server-ops' });
    const counts = new Map<string, number>();
    nc.subscribe('>', {
      callback: (err, m) => {
        if (err) return;
        const kind = kindOf(m.subject);
        counts.set(kind, (counts.get(kind) ?? 0) + 1);
      },
    });
    await nc.flush();
    const { events } = await offerLoad(client, workload, load, () => undefined);
    await sleep(3_000);

    const rows = [...counts].sort((a, b) => b[1] - a[1]);
    const width = Math.max(...rows.map(([k]) => k.length));
    process.stdout.write(`\n${events} events at ${rateArg} events/s for ${seconds} s, ${perRequest} per request: messages through nats-server, per event\n`);
    for (const [kind, n] of rows) process.stdout.write(`  ${kind.padEnd(width)}  ${String(n).padStart(8)}  ${(n / events).toFixed(3)}\n`);
    const total = rows.reduce((s, [, n]) => s + n, 0);
    process.stdout.write(`  ${'total'.padEnd(width)}  ${String(total).padStart(8)}  ${(total / events).toFixed(3)}\n`);
  } finally {
    client?.close();
    await nc?.close().catch(() => undefined);
    if (services) await stopAll(Object.values(services));
    await server.stop();
  }
}

main().catch((err: Error) => {
  process.stderr.write(`server-ops: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
