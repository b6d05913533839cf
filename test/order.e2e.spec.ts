/**
 * Per-key order as the aggregator receives it: MESH_PROCESSED read in stream
 * order is the aggregator's input (one consumer per partition, in stream
 * order), so per key it must hold the key's events in the order they were
 * sent, each once. Checked with an asynchronous handler (a different wait
 * per event, many keys at once in one instance: MESH_KEY_CONCURRENCY), with
 * retryable failures that have later events of the same key behind them in
 * the same envelope and in several queued envelopes (the retry by a nak with
 * a delay, the envelope split), and through the in-process retry path (an
 * envelope that may have been handled before is retried with its key's lane
 * held, and published under its whole-envelope ids).
 *
 * The handler 'ordered' (from MESH_HANDLER_MODULES) appends each call to a
 * file; `data.fail` is how many first attempts of an event throw a retryable
 * error; `data.gate` makes an event wait until the file `gate-open` exists.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { decodeEnvelope, Headers, partitionOf, Streams, type CloudEvent } from '@mesh/contracts';
import {
  eventually,
  postEvents,
  startMesh,
  startNatsServer,
  startService,
  stopAll,
  totalsFor,
  type NatsServer,
  type ServiceName,
  type ServiceProcess,
  type Totals,
} from '@mesh/testing';
import { waitUntilSettled } from './support/settled';

const P = 16;
const RETRY = { maxAttempts: 6, initialDelayMs: 100, multiplier: 1, jitter: 0, maxDelayMs: 100 };

interface Call {
  id: string;
  key: string;
  seq: number;
  attempt?: number;
  waiting?: boolean;
  pid: number;
  partition?: number;
  started?: number;
  ended?: number;
}

function handlerModule(dir: string): string {
  return `'use strict';
const fs = require('node:fs');
const path = require('node:path');
const DIR = ${JSON.stringify(dir)};
const log = (o) => fs.appendFileSync(path.join(DIR, 'calls.ndjson'), JSON.stringify({ ...o, pid: process.pid }) + '\\n');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function retryable(message) {
  const err = new Error(message);
  err.name = 'RetryableError';
  err.retryable = true;
  return err;
}
module.exports = {
  name: 'ordered',
  types: ['ord.event'],
  retry: ${JSON.stringify(RETRY)},
  async handle(event, ctx) {
    const d = event.data;
    if (d.gate) {
      let logged = false;
      while (!fs.existsSync(path.join(DIR, 'gate-open'))) {
        if (!logged) log({ id: event.id, key: event.partitionkey, seq: d.seq, waiting: true });
        logged = true;
        await sleep(20);
      }
    }
    // Asynchronous, and a different wait per event: other keys' events overtake each other.
    const started = Date.now();
    await sleep((d.seq * 7 + event.partitionkey.length) % 6);
    log({ id: event.id, key: event.partitionkey, seq: d.seq, attempt: ctx.attempt, partition: ctx.partition, started, ended: Date.now() });
    if (ctx.attempt <= (d.fail || 0)) throw retryable(event.id + ' fails attempt ' + ctx.attempt);
    return { type: 'ord.done', data: { amount: d.amount, seq: d.seq } };
  },
};
`;
}

interface Processed {
  msgId: string;
  key: string;
  seq: number;
}

describe('per-key order at the aggregator input', () => {
  let server: NatsServer;
  let mesh: Record<ServiceName, ServiceProcess>;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  let dir: string;
  const env = () => ({
    NATS_URL: server.url,
    MESH_HANDLER_MODULES: join(dir, 'ordered.handler.js'),
    MESH_KEY_CONCURRENCY: '8',
    MESH_LEASE_TTL: '2s',
    MESH_ACK_WAIT: '5s',
  });

  const ordEvent = (key: string, seq: number, data: Record<string, unknown> = {}): CloudEvent => ({
    specversion: '1.0',
    id: `${key}#${seq}`,
    source: 'test://order',
    type: 'ord.event',
    partitionkey: key,
    data: { seq, amount: seq + 1, ...data },
  });
  const calls = (): Call[] => {
    const file = join(dir, 'calls.ndjson');
    if (!existsSync(file)) return [];
    return readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Call);
  };
  const drained = () => waitUntilSettled(server.url, P, 90_000);
  const lastProcessedSeq = async () => (await jsm.streams.info(Streams.processed)).state.last_seq;
  /** Every event in MESH_PROCESSED after sequence `after`, in stream order, with the id of its message. */
  const processedAfter = async (after: number): Promise<Processed[]> => {
    const { state } = await jsm.streams.info(Streams.processed);
    const out: Processed[] = [];
    for (let seq = Math.max(after + 1, state.first_seq); seq <= state.last_seq; seq++) {
      const m = await jsm.streams.getMessage(Streams.processed, { seq });
      if (!m) continue;
      const msgId = m.header?.get(Headers.msgId) ?? '';
      for (const e of decodeEnvelope(m.data)) out.push({ msgId, key: e.partitionkey!, seq: (e.data as { seq: number }).seq });
    }
    return out;
  };
  /** Per key, the `seq` of its events in the order the stream holds them. */
  const orderByKey = (items: readonly Processed[], keys: readonly string[]) => {
    const by: Record<string, number[]> = Object.fromEntries(keys.map((k) => [k, []]));
    for (const it of items) if (it.key in by) by[it.key].push(it.seq);
    return by;
  };
  const totalsOfEvents = (events: readonly CloudEvent[]) => {
    const t: Record<string, Totals> = {};
    for (const e of events) {
      const x = (t[e.partitionkey!] ??= { count: 0, sum: 0 });
      x.count += 1;
      x.sum += (e.data as { amount: number }).amount;
    }
    return t;
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mesh-order-'));
    writeFileSync(join(dir, 'ordered.handler.js'), handlerModule(dir));
    server = await startNatsServer();
    mesh = await startMesh(server.url, env());
    nc = await connect({ servers: server.url });
    jsm = await jetstreamManager(nc);
  }, 60_000);
  afterAll(async () => {
    if (mesh) await stopAll(Object.values(mesh));
    await nc?.close();
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('keeps each key in order under retries of events with later ones of the key in the same envelope and in queued envelopes', async () => {
    const keys = Array.from({ length: 12 }, (_, i) => `key-${i}`);
    const PER_KEY = 30;
    // Some events fail once, some twice; each has later events of its key behind it.
    const fail = (seq: number) => (seq % 11 === 5 ? 2 : seq % 7 === 2 ? 1 : 0);
    const mark = await lastProcessedSeq();
    // Six requests back to back, five events of every key each: the envelopes queue up per partition.
    const requests = Array.from({ length: 6 }, (_, r) =>
      keys.flatMap((k) => Array.from({ length: 5 }, (_, i) => ordEvent(k, 5 * r + i, { fail: fail(5 * r + i) }))),
    );
    for (const events of requests) await postEvents(mesh.ingest.url, events, 'batch');
    await drained();

    const processed = await processedAfter(mark);
    const expected = Object.fromEntries(keys.map((k) => [k, Array.from({ length: PER_KEY }, (_, s) => s)]));
    expect(orderByKey(processed, keys)).toEqual(expected);
    expect(await totalsFor(mesh.aggregator.url, keys)).toEqual(totalsOfEvents(requests.flat()));
    // The retries did happen: every failing event was tried as often as it fails, and once more.
    const attempts = new Map<string, number>();
    for (const c of calls()) if (c.attempt) attempts.set(c.id, Math.max(attempts.get(c.id) ?? 0, c.attempt));
    const failing = requests.flat().filter((e) => (e.data as { fail: number }).fail > 0);
    expect(failing.length).toBeGreaterThan(50);
    expect(failing.filter((e) => attempts.get(e.id) !== (e.data as { fail: number }).fail + 1).map((e) => e.id)).toEqual([]);
    // Keys ran concurrently inside one partition: two calls of different keys of one partition overlapped in time.
    const done = calls().filter((c) => keys.includes(c.key) && c.started !== undefined);
    const overlapping = done.some((a) => done.some((b) => a.partition === b.partition && a.key !== b.key && a.started! < b.ended! && b.started! < a.ended!));
    expect(overlapping).toBe(true);
  }, 120_000);

  it('keeps each key in order through the in-process retry path, for envelopes a killed processor had taken', async () => {
    // One key per partition, so each partition's lane reaches its gate at once.
    const keys: string[] = [];
    for (let i = 0; keys.length < 4; i++) {
      const k = `inproc-${i}`;
      if (!keys.some((o) => partitionOf(o, P) === partitionOf(k, P))) keys.push(k);
    }
    // Each key: a gated first event, then events that fail once, with others after them.
    const events = keys.flatMap((k) => [
      ordEvent(k, 0, { gate: true }),
      ordEvent(k, 1, { fail: 1 }),
      ordEvent(k, 2),
      ordEvent(k, 3, { fail: 1 }),
      ordEvent(k, 4),
      ordEvent(k, 5),
    ]);
    const first = mesh.processor;
    const mark = await lastProcessedSeq();
    await postEvents(mesh.ingest.url, events, 'batch');
    // The first processor has taken every envelope: each key's lane waits at its gate.
    const taken = await eventually(async () => keys.every((k) => calls().some((c) => c.key === k && c.waiting && c.pid === first.pid)), 30_000, 50);
    expect(taken).toBe(true);
    await first.kill();
    writeFileSync(join(dir, 'gate-open'), '');
    mesh.processor = await startService('processor', env());
    await drained();

    const processed = await processedAfter(mark);
    expect(orderByKey(processed, keys)).toEqual(Object.fromEntries(keys.map((k) => [k, [0, 1, 2, 3, 4, 5]])));
    expect(await totalsFor(mesh.aggregator.url, keys)).toEqual(totalsOfEvents(events));
    // The new processor retried the failing events in process: their envelopes were not split,
    // so what they emitted went out under whole-envelope ids (`processor:<seq>:<p>:<type>:<n>`).
    const second = calls().filter((c) => c.pid === mesh.processor.pid && keys.includes(c.key) && c.attempt);
    for (const k of keys) {
      expect(second.filter((c) => c.key === k).map((c) => `${c.seq}/${c.attempt}`)).toEqual(['0/1', '1/1', '1/2', '2/1', '3/1', '3/2', '4/1', '5/1']);
    }
    expect(processed.filter((p) => keys.includes(p.key) && !/^processor:\d+:\d+:ord\.done:\d+$/.test(p.msgId)).map((p) => p.msgId)).toEqual([]);
  }, 120_000);
});
