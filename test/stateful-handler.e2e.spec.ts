/**
 * Handler state (`ctx.state`) under SIGKILL, with real processes: while
 * events stream in, the processor kills itself at the fault point
 * `before-ack` (outputs stored, state committed, inputs not acked: the
 * redelivered events must be skipped, not applied again), then at
 * `before-state-commit` (outputs stored, state not committed: the events
 * must run again from the old state and emit what they emitted), and is
 * later killed from outside at an arbitrary moment. The handler 'tally' (from
 * MESH_HANDLER_MODULES) keeps a count and a sum per key and emits both with
 * each event. At the end, every key's state and every emitted running total
 * must be exactly those of a run in which each event ran once, in order.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import { Buckets, encodeKvToken, handlerStatePrefix, partitionOf, Streams, type CloudEvent } from '@mesh/contracts';
import { postEvents, readStreamEvents, startMesh, startNatsServer, startService, stopAll, type NatsServer, type ServiceProcess } from '@mesh/testing';
import { logRecords } from './support/keyed-waves';
import { waitUntilDrained } from './support/mesh-state';

const P = 16;
const KEYS = 24;
const PER_KEY = 50;
const PER_REQUEST = 30;
const FaultPointMessage = 'fault point reached; killing this process';

const TALLY = `'use strict';
module.exports = {
  name: 'tally',
  types: ['tally.add'],
  handle(event, ctx) {
    const was = ctx.state.get() || { count: 0, sum: 0 };
    const now = { count: was.count + 1, sum: was.sum + event.data.amount };
    ctx.state.set(now);
    return { type: 'tally.counted', data: { ...now, n: event.data.n } };
  },
};
`;

interface Counted {
  count: number;
  sum: number;
  n: number;
}

const keyOf = (k: number) => `tally-${k}`;
const amountOf = (k: number, n: number) => ((k * 31 + n * 7) % 13) + 1;

describe('a stateful handler under SIGKILL', () => {
  let server: NatsServer;
  let dir: string;
  const procs: ServiceProcess[] = [];
  let ingest: string;
  const env = (extra: Record<string, string> = {}) => ({
    NATS_URL: server.url,
    MESH_HANDLER_MODULES: join(dir, 'tally.handler.js'),
    MESH_LEASE_TTL: '2s',
    MESH_ACK_WAIT: '5s',
    // Small batches: many commits, so the kills land mid-stream.
    MESH_BATCH_MESSAGES: '4',
    ...extra,
  });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mesh-tally-'));
    writeFileSync(join(dir, 'tally.handler.js'), TALLY);
    server = await startNatsServer();
    const mesh = await startMesh(server.url, env());
    procs.push(...Object.values(mesh));
    ingest = mesh.ingest.url;
    // The processor that will die at the fault point replaces the plain one.
    await mesh.processor.stop();
  }, 60_000);

  afterAll(async () => {
    await stopAll(procs);
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('keeps every key state exactly as if each event ran once, across kills between the state commit and the ack, between the outputs and the state commit, and from outside', async () => {
    const armed = await startService('processor', env({ MESH_TEST_FAULT: 'before-ack:6', MESH_INSTANCE_ID: 'processor-armed' }));
    procs.push(armed);

    // Round by round, every key gets its next events: each request holds many keys, each key many requests.
    const all: CloudEvent[] = [];
    for (let n = 0; n < PER_KEY; n++)
      for (let k = 0; k < KEYS; k++)
        all.push({
          specversion: '1.0',
          id: `${keyOf(k)}#${n}`,
          source: 'test://tally',
          type: 'tally.add',
          partitionkey: keyOf(k),
          data: { n, amount: amountOf(k, n) },
        });
    let sent = 0;
    /** Post all[from, to) in requests of PER_REQUEST; `midway` runs once half of them are sent. */
    const send = async (from: number, to: number, midway?: () => Promise<void>) => {
      let mid: Promise<void> | undefined;
      for (let i = from; i < to; i += PER_REQUEST) {
        await postEvents(ingest, all.slice(i, Math.min(to, i + PER_REQUEST)), 'batch', 120_000);
        sent += Math.min(to, i + PER_REQUEST) - i;
        if (midway && !mid && i + PER_REQUEST >= (from + to) / 2) mid = midway();
        await new Promise((r) => setTimeout(r, 50));
      }
      await mid;
    };
    const killedAt = async (p: ServiceProcess, point: string) => {
      await p.exited();
      const [line] = logRecords(p.output(), FaultPointMessage);
      expect({ signal: p.exitSignal(), point: line?.point, stage: line?.stage }).toEqual({ signal: 'SIGKILL', point, stage: 'processor' });
    };
    // Each phase sends a third of the events while the processor it has dies in the middle of them.
    const third = Math.ceil(all.length / 3 / PER_REQUEST) * PER_REQUEST;

    // 1. It kills itself after a batch's state is committed, before the batch is acked: the batch's events must be skipped.
    await Promise.all([send(0, third), killedAt(armed, 'before-ack')]);
    // 2. The next one kills itself after a batch's outputs are stored, before its state is committed: they must run again from the old state.
    // Not waited for: it may reach the point on the backlog before it is ready.
    const armedAgain = await startService('processor', env({ MESH_TEST_FAULT: 'before-state-commit:3', MESH_INSTANCE_ID: 'processor-armed-again' }), {
      waitReady: false,
    });
    procs.push(armedAgain);
    await Promise.all([send(third, 2 * third), killedAt(armedAgain, 'before-state-commit')]);
    // 3. Killed from outside, wherever it is, halfway through the last third.
    const second = await startService('processor', env({ MESH_INSTANCE_ID: 'processor-second' }));
    procs.push(second);
    await send(2 * third, all.length, async () => {
      await second.kill();
      procs.push(await startService('processor', env({ MESH_INSTANCE_ID: 'processor-third' })));
    });
    expect(sent).toBe(all.length);
    expect(await waitUntilDrained(server.url, P, 120_000)).toBe(true);

    // Every emitted running total: per key, exactly one per event, in order, from a state that saw each event once.
    const counted = new Map<string, Counted[]>();
    for (const e of await readStreamEvents(server.url, Streams.processed)) {
      if (e.type !== 'tally.counted') continue;
      const list = counted.get(e.partitionkey!) ?? [];
      list.push(e.data as Counted);
      counted.set(e.partitionkey!, list);
    }
    const wrong: string[] = [];
    const nc = await connect({ servers: server.url });
    try {
      const kv = await new Kvm(nc).open(Buckets.checkpoints);
      for (let k = 0; k < KEYS; k++) {
        const key = keyOf(k);
        let sum = 0;
        const expected = Array.from({ length: PER_KEY }, (_, n) => ({ count: n + 1, sum: (sum += amountOf(k, n)), n }));
        const got = [...(counted.get(key) ?? [])].sort((a, b) => a.count - b.count);
        if (JSON.stringify(got) !== JSON.stringify(expected)) wrong.push(`${key}: emitted ${JSON.stringify(got.map((c) => [c.n, c.count, c.sum]))}`);
        const entry = await kv.get(`${handlerStatePrefix(partitionOf(key, P))}tally.${encodeKvToken(key)}`);
        const state = entry?.json<{ v: unknown }>().v;
        if (JSON.stringify(state) !== JSON.stringify({ count: PER_KEY, sum }))
          wrong.push(`${key}: state ${JSON.stringify(state)}, expected count ${PER_KEY} sum ${sum}`);
      }
    } finally {
      await nc.close();
    }
    expect(wrong).toEqual([]);
  }, 240_000);
});
