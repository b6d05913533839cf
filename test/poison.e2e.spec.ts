/**
 * Poison events in the processor, with the real mesh and a handler loaded
 * from MESH_HANDLER_MODULES: a retryable failure is retried with the
 * handler's backoff (no hot loop) and then dead-lettered with headers saying
 * what failed, where and how often; a permanent failure is dead-lettered at
 * once; a handler that recovers counts its event once; an event waiting for
 * its retry (a nak with a delay) holds up neither other partitions nor the
 * other events of its envelope and partition, only its own key's later
 * events, even across a processor SIGKILLed meanwhile; and `mesh dlq redrive`
 * puts a dead letter back so it is processed once and leaves the DLQ.
 *
 * The handler appends one line per call to a file (event id, attempt, time),
 * so the test sees every call and when it happened.
 */
import { execFile } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import { Buckets, retryRecordPrefix, Headers, partitionOf, Streams, Subjects, type CloudEvent } from '@mesh/contracts';
import {
  eventually,
  orderEvent,
  postEvents,
  RepoRoot,
  startMesh,
  startNatsServer,
  startService,
  stopAll,
  totalsFor,
  totalsOf,
  type NatsServer,
  type ServiceName,
  type ServiceProcess,
  type Totals,
} from '@mesh/testing';
import { allAcked, deadLetters, partitionConsumers, type DeadLetterMessage } from './support/mesh-state';

/** The default MESH_PARTITIONS. */
const P = 16;

/** The policy of the 'flaky' handler: delays of exactly 200, 400 and 800 ms before attempts 2, 3 and 4. */
const FLAKY_RETRY = { maxAttempts: 4, initialDelayMs: 200, multiplier: 2, jitter: 0, maxDelayMs: 5000 };
const FLAKY_DELAYS = [200, 400, 800];
/** MESH_ACK_WAIT's default: a message neither acked nor nak'ed comes again after it. */
const DEFAULT_ACK_WAIT_MS = 30_000;
/** The 'stubborn' handler holds its key for 2 x 3 s before giving up: long enough to watch other keys go by. */
const STUBBORN_RETRY = { maxAttempts: 3, initialDelayMs: 3000, multiplier: 1, jitter: 0, maxDelayMs: 5000 };
/** The 'patient' handler tries every 500 ms for 20 s: the test decides when it succeeds. */
const PATIENT_RETRY = { maxAttempts: 40, initialDelayMs: 500, multiplier: 1, jitter: 0, maxDelayMs: 500 };

interface Call {
  id: string;
  handler: string;
  attempt: number;
  at: number;
}

/**
 * Two handlers in one CommonJS file. 'flaky' acts on the event type:
 * `flaky.always` throws a retryable error every time, `flaky.permanent`
 * throws a plain Error unless the file `fixed-<id>` exists, `flaky.twice`
 * throws a retryable error on attempts 1 and 2; whatever succeeds emits
 * `flaky.done` with the input's amount (so `totals` counts it). 'stubborn'
 * always throws a retryable error, with long delays. 'patient' throws a
 * retryable error until the file `release-<id>` exists.
 */
function handlerModule(dir: string): string {
  return `'use strict';
const fs = require('node:fs');
const path = require('node:path');
const DIR = ${JSON.stringify(dir)};

function record(event, ctx) {
  fs.appendFileSync(path.join(DIR, 'calls.ndjson'), JSON.stringify({ id: event.id, handler: ctx.handler, attempt: ctx.attempt, at: Date.now() }) + '\\n');
}
function retryable(message) {
  const err = new Error(message);
  err.name = 'RetryableError';
  err.retryable = true;
  return err;
}
const done = (event) => ({ type: 'flaky.done', data: { amount: event.data.amount } });

module.exports = [
  {
    name: 'flaky',
    types: ['flaky.*'],
    retry: ${JSON.stringify(FLAKY_RETRY)},
    handle(event, ctx) {
      record(event, ctx);
      switch (event.type) {
        case 'flaky.always':
          throw retryable('ledger of ' + event.id + ' is busy');
        case 'flaky.permanent':
          if (fs.existsSync(path.join(DIR, 'fixed-' + event.id))) return done(event);
          throw new Error('cannot process ' + event.id);
        case 'flaky.twice':
          if (ctx.attempt <= 2) throw retryable('not yet: attempt ' + ctx.attempt);
          return done(event);
        default:
          return done(event);
      }
    },
  },
  {
    name: 'stubborn',
    types: ['stubborn.*'],
    retry: ${JSON.stringify(STUBBORN_RETRY)},
    handle(event, ctx) {
      record(event, ctx);
      throw retryable('still stuck');
    },
  },
  {
    name: 'patient',
    types: ['patient.*'],
    retry: ${JSON.stringify(PATIENT_RETRY)},
    handle(event, ctx) {
      record(event, ctx);
      if (!fs.existsSync(path.join(DIR, 'release-' + event.id))) throw retryable(event.id + ' is not released yet');
      return done(event);
    },
  },
];
`;
}

function flakyEvent(type: string, id: string, key: string, amount: number): CloudEvent {
  return { specversion: '1.0', id, source: 'test://poison', type, partitionkey: key, data: { amount } };
}

/** `count` keys named `<prefix><n>` in partition `p`. */
function keysInside(prefix: string, p: number, count: number): string[] {
  const keys: string[] = [];
  for (let n = 0; keys.length < count; n++) if (partitionOf(`${prefix}${n}`, P) === p) keys.push(`${prefix}${n}`);
  return keys;
}

/** `count` keys named `<prefix><n>` whose partition is not `avoid`. */
function keysOutside(prefix: string, avoid: number, count: number): string[] {
  const keys: string[] = [];
  for (let n = 0; keys.length < count; n++) if (partitionOf(`${prefix}${n}`, P) !== avoid) keys.push(`${prefix}${n}`);
  return keys;
}

function runMeshCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [join(RepoRoot, 'tools/mesh/dist/main.js'), ...args], { timeout: 20_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

describe('poison events in the processor', () => {
  let server: NatsServer;
  let mesh: Record<ServiceName, ServiceProcess> | undefined;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  let dir: string;

  const calls = (id: string): Call[] => {
    const file = join(dir, 'calls.ndjson');
    if (!existsSync(file)) return [];
    return readFileSync(file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as Call)
      .filter((c) => c.id === id);
  };

  /** The dead letter of the event `id`: the one whose body carries it. */
  const deadLetterOf = async (id: string): Promise<DeadLetterMessage | undefined> =>
    (await deadLetters(jsm)).find((d) => {
      try {
        return (JSON.parse(d.text) as CloudEvent[]).some((e) => e.id === id);
      } catch {
        return false;
      }
    });

  const waitForDeadLetter = async (id: string, timeoutMs = 20_000): Promise<DeadLetterMessage> => {
    let found: DeadLetterMessage | undefined;
    const seen = await eventually(async () => (found = await deadLetterOf(id)) !== undefined, timeoutMs, 100);
    if (!seen) throw new Error(`no dead letter for event ${id} within ${timeoutMs} ms; calls: ${JSON.stringify(calls(id))}`);
    return found!;
  };

  /** Everything the processor and aggregator received is acked: no retry or redelivery can follow. */
  const waitSettled = async () => {
    const settled = await eventually(
      async () => allAcked(await partitionConsumers(jsm, 'processor', P)) && allAcked(await partitionConsumers(jsm, 'aggregator', P)),
      30_000,
      100,
    );
    expect(settled).toBe(true);
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mesh-poison-'));
    const modulePath = join(dir, 'flaky.handler.js');
    writeFileSync(modulePath, handlerModule(dir));
    server = await startNatsServer();
    mesh = await startMesh(server.url, { MESH_HANDLER_MODULES: modulePath });
    nc = await connect({ servers: server.url });
    jsm = await jetstreamManager(nc);
  }, 60_000);

  afterAll(async () => {
    await nc?.close();
    if (mesh) await stopAll(Object.values(mesh));
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('tries an event whose handler always throws a retryable error exactly maxAttempts times with the backoff delays, then dead-letters it with its headers', async () => {
    const key = 'poison-a';
    const p = partitionOf(key, P);
    const event = flakyEvent('flaky.always', 'always-1', key, 7);
    await postEvents(mesh!.ingest.url, [event], 'single');

    const letter = await waitForDeadLetter(event.id);
    await waitSettled();

    const tried = calls(event.id);
    expect(tried.map((c) => c.attempt)).toEqual([1, 2, 3, 4]);
    const waited = tried.slice(1).map((c, i) => c.at - tried[i].at);
    waited.forEach((ms, i) => {
      // Never sooner than the policy says (a hot loop). And redelivered by
      // the nak's delay, not by the consumer's ack wait running out (a lost
      // nak): how much later than the delay depends on the machine's load,
      // so that is the only upper bound that a slow machine cannot break.
      expect(ms).toBeGreaterThanOrEqual(FLAKY_DELAYS[i] - 20);
      expect(ms).toBeLessThan(DEFAULT_ACK_WAIT_MS);
    });

    expect(letter.subject).toBe(Subjects.dlq('processor', p));
    expect(letter.headers).toEqual(
      expect.objectContaining({
        [Headers.stage]: 'processor',
        [Headers.handler]: 'flaky',
        [Headers.error]: 'ledger of always-1 is busy',
        [Headers.errorKind]: 'RetryableError',
        [Headers.attempts]: '4',
        [Headers.originalSubject]: Subjects.routed('processor', p, 'flaky'),
        [Headers.originalSequence]: expect.stringMatching(/^\d+$/),
      }),
    );
    expect(JSON.parse(letter.text)).toEqual([
      expect.objectContaining({ id: event.id, source: event.source, type: event.type, partitionkey: key, data: event.data }),
    ]);

    // Mesh-Original-Sequence names the message in MESH_ROUTED that carried the event.
    const original = await jsm.streams.getMessage(Streams.routed, { seq: Number(letter.headers[Headers.originalSequence]) });
    expect(original?.subject).toBe(Subjects.routed('processor', p, 'flaky'));
    expect((original!.json() as CloudEvent[]).map((e) => e.id)).toContain(event.id);

    // Dead-lettered means not counted.
    expect(await totalsOf(mesh!.aggregator.url, key)).toEqual({ count: 0, sum: 0 });
  }, 60_000);

  it('dead-letters an event whose handler throws a plain Error at once: one call, Mesh-Attempts 1', async () => {
    const key = 'perm-b';
    const p = partitionOf(key, P);
    const event = flakyEvent('flaky.permanent', 'perm-1', key, 3);
    await postEvents(mesh!.ingest.url, [event], 'single');

    const letter = await waitForDeadLetter(event.id);
    await waitSettled();

    expect(calls(event.id).map((c) => c.attempt)).toEqual([1]);
    expect(letter.subject).toBe(Subjects.dlq('processor', p));
    expect(letter.headers).toEqual(
      expect.objectContaining({
        [Headers.stage]: 'processor',
        [Headers.handler]: 'flaky',
        [Headers.error]: 'cannot process perm-1',
        [Headers.errorKind]: 'Error',
        [Headers.attempts]: '1',
        [Headers.originalSubject]: Subjects.routed('processor', p, 'flaky'),
        [Headers.originalSequence]: expect.stringMatching(/^\d+$/),
      }),
    );
    expect(await totalsOf(mesh!.aggregator.url, key)).toEqual({ count: 0, sum: 0 });
  }, 60_000);

  it('counts once the output of a handler that fails twice with a retryable error and then succeeds', async () => {
    const key = 'twice-c';
    const event = flakyEvent('flaky.twice', 'twice-1', key, 5);
    await postEvents(mesh!.ingest.url, [event], 'single');

    expect(await eventually(async () => (await totalsOf(mesh!.aggregator.url, key)).count >= 1, 20_000, 100)).toBe(true);
    await waitSettled();

    expect(await totalsOf(mesh!.aggregator.url, key)).toEqual({ count: 1, sum: 5 });
    const tried = calls(event.id);
    expect(tried.map((c) => c.attempt)).toEqual([1, 2, 3]);
    // The two retries waited as the policy says.
    expect(tried[1].at - tried[0].at).toBeGreaterThanOrEqual(FLAKY_DELAYS[0] - 20);
    expect(tried[2].at - tried[1].at).toBeGreaterThanOrEqual(FLAKY_DELAYS[1] - 20);
    expect(await deadLetterOf(event.id)).toBeUndefined();
  }, 60_000);

  it('lets events of other partitions, in the same request and after it, reach their totals while a key waits out its backoff', async () => {
    const stuckKey = 'stuck-d';
    const stuck = flakyEvent('stubborn.stuck', 'stuck-1', stuckKey, 1);
    // Keys of other partitions here; the next test covers the stuck key's own
    // partition and envelope.
    const others = keysOutside('free-d-', partitionOf(stuckKey, P), 24);
    const expected = new Map<string, Totals>(others.map((k) => [k, { count: 0, sum: 0 }]));
    const order = (key: string, n: number, amount: number) => {
      const t = expected.get(key)!;
      t.count += 1;
      t.sum += amount;
      return orderEvent(key, n, amount);
    };

    // The stuck event first, then other keys in the same request.
    await postEvents(mesh!.ingest.url, [stuck, ...others.map((k, i) => order(k, 1, i + 1))], 'batch');
    // More for the other keys once the stuck one is in its backoff.
    expect(await eventually(async () => calls(stuck.id).length >= 1, 10_000, 20)).toBe(true);
    await postEvents(
      mesh!.ingest.url,
      others.map((k, i) => order(k, 2, 2 * i + 1)),
      'ndjson',
    );

    let totals: Record<string, Totals> = {};
    const reached = await eventually(
      async () => {
        totals = await totalsFor(mesh!.aggregator.url, others);
        return others.every((k) => totals[k].count >= expected.get(k)!.count);
      },
      15_000,
      50,
    );
    // Read before anything else: the stuck event must still be waiting now.
    const stuckCallsThen = calls(stuck.id).length;
    const stuckDeadThen = await deadLetterOf(stuck.id);
    expect(reached).toBe(true);
    expect(totals).toEqual(Object.fromEntries(expected));
    expect(stuckDeadThen).toBeUndefined();
    expect(stuckCallsThen).toBeLessThan(STUBBORN_RETRY.maxAttempts);

    // And the stuck event does end in the DLQ after all its attempts.
    const letter = await waitForDeadLetter(stuck.id, 20_000);
    expect(letter.headers[Headers.handler]).toBe('stubborn');
    expect(letter.headers[Headers.attempts]).toBe(String(STUBBORN_RETRY.maxAttempts));
    await waitSettled();
    expect(await totalsFor(mesh!.aggregator.url, others)).toEqual(Object.fromEntries(expected));
  }, 60_000);

  /** Ids of the events in the MESH_ROUTED messages of `subject`, one list per message. */
  const routedEnvelopes = async (subject: string): Promise<string[][]> => {
    const out: string[][] = [];
    for (let seq = 1; ;) {
      const m = await jsm.streams.getMessage(Streams.routed, { next_by_subj: subject, seq }).catch(() => null);
      if (!m) return out;
      out.push((m.json() as CloudEvent[]).map((e) => e.id));
      seq = m.seq + 1;
    }
  };

  /** The processor's retry records of partition `p` (RetryLedger) still in mesh_checkpoints. */
  const retryRecords = async (p: number): Promise<string[]> => {
    const kv = await new Kvm(nc).open(Buckets.checkpoints);
    const keys: string[] = [];
    for await (const k of await kv.keys(`${retryRecordPrefix(p)}>`)) keys.push(k);
    return keys;
  };

  const release = (id: string) => appendFileSync(join(dir, `release-${id}`), 'released\n');
  const patient = (id: string, key: string, amount: number) => flakyEvent('patient.hold', id, key, amount);

  it('while an event waits for its retry, the other events of its envelope and other keys of its partition go on, and its own key waits behind it in order', async () => {
    const key = 'hold-f';
    const p = partitionOf(key, P);
    const neighbours = keysInside('hold-f-', p, 6);
    const expected = new Map<string, Totals>(neighbours.map((k) => [k, { count: 0, sum: 0 }]));
    const released = (id: string, k: string, amount: number) => {
      release(id);
      const t = expected.get(k)!;
      t.count += 1;
      t.sum += amount;
      return patient(id, k, amount);
    };

    // One request: the held event first, then its neighbours, all one envelope.
    const held = patient('hold-1', key, 1);
    const firstRound = neighbours.map((k, i) => released(`hold-n1-${i}`, k, i + 1));
    await postEvents(mesh!.ingest.url, [held, ...firstRound], 'batch');
    expect(await eventually(async () => calls(held.id).length >= 1, 10_000, 20)).toBe(true);
    // A later event of the held key (released: it would succeed) and more for the neighbours.
    const after = patient('hold-2', key, 10);
    release(after.id);
    const secondRound = neighbours.map((k, i) => released(`hold-n2-${i}`, k, 2 * i + 1));
    await postEvents(mesh!.ingest.url, [after, ...secondRound], 'batch');

    let totals: Record<string, Totals> = {};
    const reached = await eventually(
      async () => {
        totals = await totalsFor(mesh!.aggregator.url, neighbours);
        return neighbours.every((k) => totals[k].count >= expected.get(k)!.count);
      },
      15_000,
      50,
    );
    // Read at once: the held key must still be waiting now.
    const heldCallsThen = calls(held.id);
    const afterCallsThen = calls(after.id);
    const heldTotalsThen = await totalsOf(mesh!.aggregator.url, key);
    expect(reached).toBe(true);
    expect(totals).toEqual(Object.fromEntries(expected));
    expect(heldTotalsThen).toEqual({ count: 0, sum: 0 });
    expect(afterCallsThen).toEqual([]);
    expect(heldCallsThen.length).toBeGreaterThanOrEqual(1);
    // The retries wait the policy's delay: a nak with a delay, not a hot loop.
    heldCallsThen.slice(1).forEach((c, i) => expect(c.at - heldCallsThen[i].at).toBeGreaterThanOrEqual(PATIENT_RETRY.initialDelayMs - 20));
    // The held event and its neighbours came in one envelope, and the neighbours ran once each.
    const envelopes = await routedEnvelopes(Subjects.routed('processor', p, 'patient'));
    expect(envelopes).toContainEqual([held.id, ...firstRound.map((e) => e.id)]);
    for (const e of [...firstRound, ...secondRound]) expect(calls(e.id).map((c) => c.attempt)).toEqual([1]);
    expect(await retryRecords(p)).not.toEqual([]);

    release(held.id);
    expect(await eventually(async () => (await totalsOf(mesh!.aggregator.url, key)).count >= 2, 15_000, 50)).toBe(true);
    await waitSettled();
    expect(await totalsOf(mesh!.aggregator.url, key)).toEqual({ count: 2, sum: 11 });
    expect(await totalsFor(mesh!.aggregator.url, neighbours)).toEqual(Object.fromEntries(expected));
    // The key's later event ran once, only after the held one had succeeded.
    const heldCalls = calls(held.id);
    const afterCalls = calls(after.id);
    expect(afterCalls.map((c) => c.attempt)).toEqual([1]);
    expect(afterCalls[0].at).toBeGreaterThanOrEqual(heldCalls[heldCalls.length - 1].at);
    expect(heldCalls.map((c) => c.attempt)).toEqual(heldCalls.map((_, i) => i + 1));
    expect(await deadLetterOf(held.id)).toBeUndefined();
    expect(await eventually(async () => (await retryRecords(p)).length === 0, 10_000, 50)).toBe(true);
  }, 60_000);

  it('a processor killed while an event waits: its successor finishes the split envelope from the record, each event counted once', async () => {
    const key = 'crash-g';
    const p = partitionOf(key, P);
    const neighbours = keysInside('crash-g-', p, 5);
    const held = patient('crash-1', key, 4);
    const others = neighbours.map((k, i) => {
      release(`crash-n-${i}`);
      return patient(`crash-n-${i}`, k, i + 1);
    });
    await postEvents(mesh!.ingest.url, [held, ...others], 'batch');
    expect(
      await eventually(
        async () => {
          const totals = await totalsFor(mesh!.aggregator.url, neighbours);
          return neighbours.every((k) => totals[k].count >= 1);
        },
        15_000,
        50,
      ),
    ).toBe(true);
    expect(await retryRecords(p)).toHaveLength(1);

    await mesh!.processor.kill();
    mesh!.processor = await startService('processor', { NATS_URL: server.url, MESH_HANDLER_MODULES: join(dir, 'flaky.handler.js') });
    release(held.id);

    expect(await eventually(async () => (await totalsOf(mesh!.aggregator.url, key)).count >= 1, 30_000, 100)).toBe(true);
    await waitSettled();
    expect(await totalsOf(mesh!.aggregator.url, key)).toEqual({ count: 1, sum: 4 });
    expect(await totalsFor(mesh!.aggregator.url, neighbours)).toEqual(Object.fromEntries(neighbours.map((k, i) => [k, { count: 1, sum: i + 1 }])));
    // The successor could not know the neighbours' outputs were stored, so it ran
    // them again; their ids were the same, so JetStream kept one of each.
    for (const e of others) expect(calls(e.id).map((c) => c.attempt)).toEqual([1, 1]);
    // The attempts went on from the record, not from 1.
    const attempts = calls(held.id).map((c) => c.attempt);
    expect(attempts).toEqual(attempts.map((_, i) => i + 1));
    expect(await eventually(async () => (await retryRecords(p)).length === 0, 10_000, 50)).toBe(true);
  }, 90_000);

  it('redrives a dead letter with `mesh dlq redrive <seq>` once its handler is fixed: processed once, gone from the DLQ', async () => {
    const key = 'perm-e';
    const event = flakyEvent('flaky.permanent', 'perm-2', key, 11);
    await postEvents(mesh!.ingest.url, [event], 'single');
    const letter = await waitForDeadLetter(event.id);
    await waitSettled();
    expect(await totalsOf(mesh!.aggregator.url, key)).toEqual({ count: 0, sum: 0 });

    // The handler now succeeds for this event.
    appendFileSync(join(dir, `fixed-${event.id}`), 'fixed\n');
    const cli = await runMeshCli(['--nats', server.url, 'dlq', 'redrive', String(letter.seq)]);
    expect({ code: cli.code, stderr: cli.stderr }).toEqual({ code: 0, stderr: '' });
    expect(cli.stdout).toContain(`redrove dead letter ${letter.seq} to ${letter.headers[Headers.originalSubject]}`);

    expect(await eventually(async () => (await totalsOf(mesh!.aggregator.url, key)).count >= 1, 20_000, 100)).toBe(true);
    await waitSettled();
    expect(await totalsOf(mesh!.aggregator.url, key)).toEqual({ count: 1, sum: 11 });
    expect(calls(event.id).map((c) => c.attempt)).toEqual([1, 1]);
    expect((await deadLetters(jsm)).map((d) => d.seq)).not.toContain(letter.seq);
    expect(await deadLetterOf(event.id)).toBeUndefined();
  }, 60_000);
});
