/**
 * The raw baseline: what the bare NATS client does over the same four
 * durable hops as the mesh, on the same server and cores. Four file-backed
 * streams, three relay processes and a counting process (see
 * baseline-worker.ts), and a producer process publishing the events as fast
 * as a fixed number of in-flight publishes allows. Events/s = events /
 * (time from "start" sent to the producer until the counter has counted
 * them all).
 *
 * Each process is a child of the bench, registered in OwnedProcesses so it
 * is stopped by pid whatever happens.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { NatsConnection } from '@nats-io/nats-core';
import { AckPolicy, DeliverPolicy, DiscardPolicy, jetstreamManager, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import type { BaselineRole, FromWorker, ToWorker } from './baseline-worker';
import type { OwnedProcess, OwnedProcesses } from './owned-processes';
import { cpuDelta, readCpu, readPeakRss, type CpuTimes } from './proc-stats';

export interface BaselineVariant {
  label: string;
  /** Events per message: 1, or a batch. */
  perMessage: number;
  events: number;
}

export interface BaselineResult {
  label: string;
  perMessage: number;
  events: number;
  messages: number;
  seconds: number;
  eventsPerSec: number;
  messagesPerSec: number;
  /** CPU used during the run per process (producer, relays, counter, nats-server). */
  cpu: Record<string, CpuTimes>;
  peakRssBytes: Record<string, number>;
}

const Hops = 4;
const DuplicateWindowNs = 10 * 60 * 1e9;
const MaxAckPending = 1024;

interface Worker {
  name: string;
  child: ChildProcess;
  owned: OwnedProcess;
  messages: FromWorker[];
  waitFor(type: FromWorker['type'], timeoutMs: number): Promise<FromWorker>;
}

function startWorker(owned: OwnedProcesses, name: string, natsUrl: string, role: BaselineRole, auth: Record<string, string>): Promise<Worker> {
  const child = fork(join(__dirname, 'baseline-worker.js'), [JSON.stringify({ ...role, natsUrl, auth })], {
    env: { PATH: process.env.PATH ?? '' },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    execArgv: [],
  });
  const exited = new Promise<void>((r) => {
    if (child.exitCode !== null || child.signalCode !== null) r();
    else child.once('exit', () => r());
  });
  const listeners = new Set<(m: FromWorker) => void>();
  const w: Worker = {
    name,
    child,
    messages: [],
    owned: owned.add({
      name: `baseline ${name}`,
      pid: child.pid!,
      tier: 0,
      async stop() {
        if (child.exitCode === null && child.signalCode === null) {
          if (child.connected) child.send({ type: 'stop' } satisfies ToWorker);
          else child.kill('SIGTERM');
        }
        await exited;
      },
      async kill() {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        await exited;
      },
    }),
    waitFor(type, timeoutMs) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => done(new Error(`baseline ${name}: no '${type}' within ${timeoutMs / 1000} s`)), timeoutMs);
        const onMsg = (m: FromWorker) => {
          if (m.type === type) done(undefined, m);
          else if (m.type === 'error') done(new Error(`baseline ${name} failed: ${m.message}`));
        };
        const onExit = (code: number | null) => done(new Error(`baseline ${name} exited with code ${code} before '${type}'`));
        const done = (err?: Error, m?: FromWorker) => {
          clearTimeout(timer);
          listeners.delete(onMsg);
          child.off('exit', onExit);
          if (err) reject(err);
          else resolve(m!);
        };
        const earlier = w.messages.find((m) => m.type === type || m.type === 'error');
        if (earlier) return void onMsg(earlier);
        listeners.add(onMsg);
        child.once('exit', onExit);
      });
    },
  };
  child.on('message', (m: FromWorker) => {
    w.messages.push(m);
    for (const l of [...listeners]) l(m);
  });
  return w.waitFor('ready', 30_000).then(() => w);
}

export async function runBaseline(
  nc: NatsConnection,
  natsUrl: string,
  natsPid: number,
  owned: OwnedProcesses,
  variant: BaselineVariant,
  eventBytes: number,
  say: (line: string) => void,
  /** NATS_* variables of the identity the workers connect as (`--secure`: the admin's). */
  auth: Record<string, string> = {},
): Promise<BaselineResult> {
  const jsm = await jetstreamManager(nc);
  const tag = variant.perMessage === 1 ? 'E' : 'B';
  const stream = (i: number) => `BENCH_RAW_${tag}${i}`;
  const subject = (i: number) => `bench.raw.${tag.toLowerCase()}${i}`;
  for (let i = 1; i <= Hops; i++) {
    await jsm.streams.add({
      name: stream(i),
      subjects: [subject(i)],
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      discard: DiscardPolicy.Old,
      num_replicas: 1,
      duplicate_window: DuplicateWindowNs,
    });
    await jsm.consumers.add(stream(i), {
      durable_name: `hop${i}`,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      max_ack_pending: MaxAckPending,
    });
  }

  const messages = Math.ceil(variant.events / variant.perMessage);
  const pull = variant.perMessage === 1 ? 512 : 64;
  const workers: Worker[] = [];
  try {
    workers.push(
      await startWorker(owned, 'counter', natsUrl, { role: 'counter', stream: stream(Hops), consumer: `hop${Hops}`, events: variant.events, pull }, auth),
    );
    for (let hop = Hops - 1; hop >= 1; hop--) {
      workers.push(
        await startWorker(
          owned,
          `relay ${hop}`,
          natsUrl,
          { role: 'relay', hop, stream: stream(hop), consumer: `hop${hop}`, next: subject(hop + 1), pull },
          auth,
        ),
      );
    }
    const producer = await startWorker(
      owned,
      'producer',
      natsUrl,
      {
        role: 'producer',
        subject: subject(1),
        events: variant.events,
        perMessage: variant.perMessage,
        eventBytes,
        inFlight: variant.perMessage === 1 ? 256 : 16,
      },
      auth,
    );
    workers.push(producer);
    const counter = workers[0];

    const pids: Record<string, number> = { 'nats-server': natsPid };
    for (const w of workers) pids[w.name] = w.child.pid!;
    const before = Object.fromEntries(Object.entries(pids).map(([n, pid]) => [n, readCpu(pid)]));

    say(`raw baseline ${variant.label}: ${variant.events} events in ${messages} messages over ${Hops} streams`);
    const t0 = performance.now();
    producer.child.send({ type: 'start' } satisfies ToWorker);
    await counter.waitFor('done', 300_000);
    const seconds = (performance.now() - t0) / 1000;

    const cpu: Record<string, CpuTimes> = {};
    const peakRssBytes: Record<string, number> = {};
    for (const [n, pid] of Object.entries(pids)) {
      cpu[n] = cpuDelta(before[n], readCpu(pid));
      if (n !== 'nats-server') peakRssBytes[n] = readPeakRss(pid) ?? 0;
    }
    return {
      label: variant.label,
      perMessage: variant.perMessage,
      events: variant.events,
      messages,
      seconds,
      eventsPerSec: variant.events / seconds,
      messagesPerSec: messages / seconds,
      cpu,
      peakRssBytes,
    };
  } finally {
    await Promise.all(workers.map((w) => owned.stop(w.owned, 10_000)));
    for (let i = 1; i <= Hops; i++) await jsm.streams.delete(stream(i)).catch(() => undefined);
  }
}
