/**
 * `node bench/dist/server-ops.js [events/s] [events] [events per request]`:
 * what the mesh asks of nats-server per event. On a fresh nats-server with
 * the four services it posts the events twice (the first run warms up), the
 * second under a `>` subscription that counts every message the server
 * routes, by kind: envelopes stored per stream, KV puts per bucket, acks,
 * publish acks and other replies (`_INBOX`), pulls, API calls. `max` as the
 * rate posts as fast as 16 requests in flight go.
 *
 * The subscription sees what clients publish, not what the server delivers
 * to consumers; a stream's envelopes show twice (the publish, and the
 * server's delivery to the pull consumer's inbox subject).
 */
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/nats-core';
import { startNatsServer, startService, type ServiceProcess } from '@mesh/testing';
import { IngestClient } from './ingest-client';
import { Workload } from './workload';

const rateArg = process.argv[2] ?? '500';
const rate = rateArg === 'max' ? Number.POSITIVE_INFINITY : Number(rateArg);
const events = Number(process.argv[3] ?? 5_000);
const perRequest = Number(process.argv[4] ?? 1);
const inFlight = perRequest === 1 ? 64 : 16;
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

async function post(client: IngestClient, workload: Workload): Promise<void> {
  const start = Date.now();
  let slot = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      for (;;) {
        const i = slot++;
        if (i * perRequest >= events) return;
        const at = start + (i * perRequest * 1000) / rate;
        if (Number.isFinite(at) && at - Date.now() >= 1) await sleep(at - Date.now());
        await client.post(workload.next(perRequest).events);
      }
    }),
  );
}

async function main(): Promise<void> {
  if (!(rate > 0) || !(events > 0) || !(perRequest > 0)) {
    process.stderr.write(`server-ops: usage: node bench/dist/server-ops.js [events/s|max] [events] [events per request]; got ${process.argv.slice(2).join(' ')}\n`);
    process.exit(2);
  }
  const server = await startNatsServer();
  const services: ServiceProcess[] = [];
  let nc: NatsConnection | undefined;
  let client: IngestClient | undefined;
  try {
    const env = { NATS_URL: server.url };
    services.push(await startService('processor', env));
    services.push(...(await Promise.all((['ingest', 'router', 'aggregator'] as const).map((n) => startService(n, env)))));
    client = new IngestClient(services.find((s) => s.name === 'ingest')!.url, inFlight);
    const workload = new Workload(1000, 1, 100);
    await post(client, workload);
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
    await post(client, workload);
    await sleep(3_000);

    const rows = [...counts].sort((a, b) => b[1] - a[1]);
    const width = Math.max(...rows.map(([k]) => k.length));
    process.stdout.write(`\n${events} events at ${rateArg}/s, ${perRequest} per request: messages through nats-server, per event\n`);
    for (const [kind, n] of rows) process.stdout.write(`  ${kind.padEnd(width)}  ${String(n).padStart(8)}  ${(n / events).toFixed(3)}\n`);
    const total = rows.reduce((s, [, n]) => s + n, 0);
    process.stdout.write(`  ${'total'.padEnd(width)}  ${String(total).padStart(8)}  ${(total / events).toFixed(3)}\n`);
  } finally {
    client?.close();
    await nc?.close().catch(() => undefined);
    for (const s of services) await s.stop().catch(() => s.kill());
    await server.stop();
  }
}

main().catch((err: Error) => {
  process.stderr.write(`server-ops: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
