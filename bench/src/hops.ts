/**
 * `node bench/dist/hops.js [rate] [seconds] [events per request]`: where the
 * latency of light load goes, hop by hop. On a fresh nats-server with the
 * four services, it posts requests (one event each by default) at `rate` per second (open loop, timed from
 * when each was due), twice (the first run warms the code and the
 * connections; only the second is reported), then reads every stream and
 * times each event by the stream timestamps of the envelopes that carried
 * it: post → MESH_INGEST → MESH_ROUTED → MESH_PROCESSED → its aggregate
 * (seen on `$KV.mesh_aggregates.totals.<key>` as the aggregator writes it).
 * It also prints the CPU each process used, every half second.
 */
import { readFileSync } from 'node:fs';
import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager, type JsMsg } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { decodeEnvelope, Streams } from '@mesh/contracts';
import { startMesh, startNatsServer, stopAll, type ServiceName, type ServiceProcess } from '@mesh/testing';
import { IngestClient } from './ingest-client';
import { offerLoad } from './offered-load';
import { summarise } from './percentiles';
import { totalsOf, Workload } from './workload';

const rate = Number(process.argv[2] ?? 1000);
const seconds = Number(process.argv[3] ?? 10);
/** Events per request (1 by default: light load's worst case, every event its own message). */
const perRequest = Number(process.argv[4] ?? 1);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** Post `rate` requests/s of `perRequest` events for `seconds`; returns when each event was due (epoch ms), by id. */
async function offer(client: IngestClient, workload: Workload): Promise<Map<string, number>> {
  const due = new Map<string, number>();
  const load = { rate: rate * perRequest, batch: perRequest, concurrency: 64, durationMs: seconds * 1000 };
  // Every key is a probe, so every event is reported with the time it was due.
  await offerLoad(client, workload, load, (events, at) => {
    for (const e of events) due.set(`${e.key}-${e.n}`, performance.timeOrigin + at);
  });
  return due;
}

/** Stream time of every event id in `stream` (the processor's outputs are named after their input: `<id>:<handler>:<n>`). */
async function stamps(js: JetStreamClient, jsm: JetStreamManager, stream: string): Promise<Map<string, number>> {
  const at = new Map<string, number>();
  const { state } = await jsm.streams.info(stream);
  const consumer = await js.consumers.get(stream);
  let seen = 0;
  while (seen < state.messages) {
    let got = 0;
    for await (const m of (await consumer.fetch({ max_messages: 1000, expires: 2000 })) as AsyncIterable<JsMsg>) {
      got++;
      seen++;
      for (const e of decodeEnvelope(m.data)) at.set(e.id.split(':')[0], Number(m.info.timestampNanos) / 1e6);
    }
    if (got === 0) break;
  }
  return at;
}

async function main(): Promise<void> {
  const server = await startNatsServer();
  let services: Record<ServiceName, ServiceProcess> | undefined;
  let nc: NatsConnection | undefined;
  try {
    services = await startMesh(server.url, Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[0].startsWith('MESH_'))));
    nc = await connect({ servers: server.url });
    const client = new IngestClient(services.ingest.url, 64);
    const workload = new Workload(1000, 1000, 100);

    // When each key's count reached n, as the aggregator wrote it: event `<key>-<n>` is in its aggregate.
    const aggregated = new Map<string, number>();
    nc.subscribe('$KV.mesh_aggregates.totals.>', {
      callback: (err, m) => {
        if (err || m.data.length === 0) return;
        const key = m.subject.slice(m.subject.lastIndexOf('.') + 1);
        const now = Date.now();
        for (let n = totalsOf(m.json()).count; n > 0 && !aggregated.has(`${key}-${n}`); n--) aggregated.set(`${key}-${n}`, now);
      },
    });
    await offer(client, workload);
    await sleep(2000);

    const pids: Record<string, number> = {
      'nats-server': server.pid,
      bench: process.pid,
      ...Object.fromEntries(Object.values(services).map((s) => [s.name, s.pid])),
    };
    let before = Object.fromEntries(Object.entries(pids).map(([n, pid]) => [n, cpuMs(pid)]));
    const cpu = setInterval(() => {
      const now = Object.fromEntries(Object.entries(pids).map(([n, pid]) => [n, cpuMs(pid)]));
      process.stdout.write(
        `cpu % ${Object.keys(pids)
          .map((n) => `${n} ${Math.round((now[n] - before[n]) / 5)}`)
          .join(', ')}\n`,
      );
      before = now;
    }, 500);
    const due = await offer(client, workload);
    clearInterval(cpu);
    await sleep(3000);
    client.close();

    const js = jetstream(nc);
    const jsm = await jetstreamManager(nc);
    const [ingested, routed, processed] = [
      await stamps(js, jsm, Streams.ingest),
      await stamps(js, jsm, Streams.routed),
      await stamps(js, jsm, Streams.processed),
    ];
    const hops: Record<string, number[]> = { 'post → MESH_INGEST': [], '→ MESH_ROUTED': [], '→ MESH_PROCESSED': [], '→ aggregate': [], 'post → aggregate': [] };
    for (const [id, at] of due) {
      const a = ingested.get(id);
      const b = routed.get(id);
      const c = processed.get(id);
      const d = aggregated.get(id);
      if (a === undefined || b === undefined || c === undefined || d === undefined) continue;
      hops['post → MESH_INGEST'].push(a - at);
      hops['→ MESH_ROUTED'].push(b - a);
      hops['→ MESH_PROCESSED'].push(c - b);
      hops['→ aggregate'].push(d - c);
      hops['post → aggregate'].push(d - at);
    }
    process.stdout.write(`\n${rate} requests/s of ${perRequest} event(s) for ${seconds} s, ms:\n`);
    for (const [name, samples] of Object.entries(hops)) {
      const s = summarise(samples);
      if (s) process.stdout.write(`  ${name.padEnd(20)} p50 ${s.p50}  p95 ${s.p95}  p99 ${s.p99}  max ${s.max}  (${s.samples} events)\n`);
    }
  } finally {
    await nc?.close().catch(() => undefined);
    if (services) await stopAll(Object.values(services));
    await server.stop();
  }
}

main().catch((err: Error) => {
  process.stderr.write(`hops: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
