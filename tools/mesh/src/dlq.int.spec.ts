import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { headers as natsHeaders, type NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { encodeEnvelope, Headers, Streams, Subjects, type CloudEvent, type DlqStage } from '@mesh/contracts';
import { provisionMesh } from '@mesh/messaging';
import { deadLetter, PermanentError } from '@mesh/runtime';
import { orderEvent, startNatsServer, type NatsServer } from '@mesh/testing';
import { commandContext, type CommandContext } from './context';
import { dlqList } from './dlq-ls';
import { dlqRedrive } from './dlq-redrive';
import { dlqRemove } from './dlq-rm';
import { dlqShow } from './dlq-show';
import { CliError, UsageError } from './errors';
import { MemoryOutput } from './output';

describe('mesh dlq (real nats-server)', () => {
  let server: NatsServer;
  let nc: NatsConnection;
  let js: JetStreamClient;
  let jsm: JetStreamManager;
  // Dead letters get message ids from their origin; a fresh origin sequence per seed keeps them distinct.
  let origin = 0;

  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connect({ servers: server.url });
    await provisionMesh(nc, { partitions: 4 });
    js = jetstream(nc);
    jsm = await jetstreamManager(nc);
  });
  afterAll(async () => {
    await nc?.close();
    await server?.stop();
  });
  beforeEach(async () => {
    await jsm.streams.purge(Streams.dlq);
  });

  async function cli(opts: { json?: boolean; jsm?: JetStreamManager } = {}): Promise<{ ctx: CommandContext; out: MemoryOutput }> {
    const out = new MemoryOutput();
    const ctx = await commandContext(nc, out, { json: opts.json });
    return { ctx: opts.jsm ? { ...ctx, jsm: opts.jsm } : ctx, out };
  }

  interface Seeded {
    seq: number;
    payload: Uint8Array;
    subject: string;
    event?: CloudEvent;
  }

  async function unroutable(partition: number, key: string): Promise<Seeded> {
    const event = orderEvent(key, ++origin, 10, { type: 'order.unknown' });
    const payload = encodeEnvelope([event]);
    const subject = Subjects.ingest(partition, event.type);
    const ack = await deadLetter(js, {
      stage: 'router',
      partition,
      error: new Error('no handler or rule takes order.unknown'),
      attempts: 1,
      originalStream: Streams.ingest,
      originalSubject: subject,
      originalSequence: origin,
      index: 0,
      payload,
    });
    return { seq: ack.seq, payload, subject, event };
  }

  async function failedInHandler(partition: number, handler: string, key: string): Promise<Seeded> {
    const event = orderEvent(key, ++origin, -5);
    const payload = encodeEnvelope([event]);
    const subject = Subjects.routed('processor', partition, handler);
    const ack = await deadLetter(js, {
      stage: 'processor',
      partition,
      handler,
      error: new PermanentError('amount must be positive'),
      attempts: 3,
      originalStream: Streams.routed,
      originalSubject: subject,
      originalSequence: origin,
      index: 0,
      payload,
    });
    return { seq: ack.seq, payload, subject, event };
  }

  async function malformed(stage: DlqStage, partition: number): Promise<Seeded> {
    const payload = Buffer.from('not json{');
    const subject = Subjects.processed(partition, 'order.approved');
    const ack = await deadLetter(js, {
      stage,
      partition,
      error: new Error('malformed envelope: not JSON'),
      attempts: 1,
      originalStream: Streams.processed,
      originalSubject: subject,
      originalSequence: ++origin,
      index: -1,
      payload,
    });
    return { seq: ack.seq, payload, subject };
  }

  async function stored(subject: string): Promise<number> {
    const info = await jsm.streams.info(Streams.routed, { subjects_filter: subject });
    const ingest = await jsm.streams.info(Streams.ingest, { subjects_filter: subject });
    return (info.state.subjects?.[subject] ?? 0) + (ingest.state.subjects?.[subject] ?? 0);
  }

  async function inDlq(seq: number): Promise<boolean> {
    return (await jsm.streams.getMessage(Streams.dlq, { seq })) !== null;
  }

  describe('ls', () => {
    it('lists every dead letter oldest first with its stage, partition, handler, error, attempts, origin and event', async () => {
      const a = await unroutable(0, 'alice');
      const b = await failedInHandler(2, 'orders', 'bob');
      const c = await malformed('aggregator', 3);
      const { ctx, out } = await cli({ json: true });
      await dlqList(ctx, { limit: 100 });
      const { deadLetters, matching } = out.json<{ deadLetters: Record<string, unknown>[]; matching: number }>();
      expect(matching).toBe(3);
      expect(deadLetters.map((d) => d.seq)).toEqual([a.seq, b.seq, c.seq]);
      expect(deadLetters[1]).toMatchObject({
        subject: Subjects.dlq('processor', 2),
        stage: 'processor',
        partition: 2,
        handler: 'orders',
        error: 'amount must be positive',
        errorKind: 'PermanentError',
        attempts: 3,
        originalStream: Streams.routed,
        originalSubject: b.subject,
        events: [{ id: b.event!.id, source: b.event!.source, type: 'order.created' }],
        malformed: null,
      });
      expect(typeof deadLetters[1].time).toBe('string');
      expect(deadLetters[2]).toMatchObject({ stage: 'aggregator', partition: 3, events: null, malformed: expect.stringMatching(/^not JSON/) });
    });

    it('prints a table an operator can read', async () => {
      const b = await failedInHandler(2, 'orders', 'bob');
      await malformed('processor', 1);
      const { ctx, out } = await cli();
      await dlqList(ctx, { limit: 100 });
      expect(out.stdout[0]).toMatch(/^SEQ\s+TIME\s+STAGE\s+P\s+HANDLER\s+ATTEMPTS\s+ERROR\s+ORIGINAL \(subject #seq\)\s+EVENT\s+TYPE$/);
      expect(out.stdout[1]).toMatch(
        new RegExp(
          `^${b.seq}\\s+\\S+Z\\s+processor\\s+2\\s+orders\\s+3\\s+amount must be positive\\s+mesh\\.routed\\.processor\\.2\\.orders #\\d+\\s+${b.event!.id}\\s+order\\.created$`,
        ),
      );
      expect(out.stdout[2]).toMatch(/processor\s+1\s+-\s+1\s+malformed envelope: not JSON .*\(malformed\)\s+-$/);
      expect(out.stdout).toHaveLength(3);
    });

    it('filters by stage and partition, and says what --limit left out', async () => {
      const a = await unroutable(0, 'alice');
      const b = await failedInHandler(2, 'orders', 'bob');
      const c = await failedInHandler(3, 'orders', 'carol');
      const seqs = async (o: Parameters<typeof dlqList>[1]) => {
        const { ctx, out } = await cli({ json: true });
        await dlqList(ctx, o);
        return out.json<{ deadLetters: { seq: number }[] }>().deadLetters.map((d) => d.seq);
      };
      expect(await seqs({ stage: 'processor', limit: 100 })).toEqual([b.seq, c.seq]);
      expect(await seqs({ stage: 'processor', partition: 3, limit: 100 })).toEqual([c.seq]);
      expect(await seqs({ partition: 0, limit: 100 })).toEqual([a.seq]);
      expect(await seqs({ stage: 'ingest', limit: 100 })).toEqual([]);

      const { ctx, out } = await cli();
      await dlqList(ctx, { limit: 2 });
      expect(out.stdout).toHaveLength(4);
      expect(out.stdout[3]).toBe('(2 of 3 dead letters; --limit 3 lists them all)');
    });

    it('says so when there are none', async () => {
      const { ctx, out } = await cli();
      await dlqList(ctx, { stage: 'router', partition: 1, limit: 10 });
      expect(out.stdout).toEqual([`no dead letters in ${Streams.dlq} (stage router, partition 1)`]);
    });

    it('rejects a partition the mesh does not have, naming its partition count', async () => {
      const { ctx } = await cli();
      const listing = dlqList(ctx, { partition: 9, limit: 10 });
      await expect(listing).rejects.toThrow(UsageError);
      await expect(dlqList(ctx, { partition: 9, limit: 10 })).rejects.toThrow('partition 9 is out of range; this mesh has 4 partitions (0 to 3)');
    });

    it('creates no durable consumer on MESH_DLQ', async () => {
      await unroutable(1, 'dave');
      const { ctx } = await cli();
      await dlqList(ctx, { limit: 10 });
      const durable: string[] = [];
      for await (const ci of jsm.consumers.list(Streams.dlq)) if (ci.config.durable_name) durable.push(ci.name);
      expect(durable).toEqual([]);
    });
  });

  describe('show', () => {
    it('shows every header and the pretty body', async () => {
      const b = await failedInHandler(2, 'orders', 'bob');
      const { ctx, out } = await cli();
      await dlqShow(ctx, { seq: b.seq });
      expect(out.stdout[0]).toBe(`dead letter ${b.seq} in ${Streams.dlq}`);
      expect(out.stdout).toEqual(
        expect.arrayContaining([
          expect.stringMatching(/^ {2}handler +orders$/),
          expect.stringMatching(/^ {2}original subject +mesh\.routed\.processor\.2\.orders$/),
          `  ${Headers.error}: amount must be positive`,
          `  ${Headers.errorKind}: PermanentError`,
          `  ${Headers.attempts}: 3`,
          expect.stringMatching(/^body: a batch envelope of 1 event \(\d+ bytes\)$/),
          `    "id": "${b.event!.id}",`,
        ]),
      );
    });

    it('gives the headers and the parsed body as JSON', async () => {
      const b = await failedInHandler(1, 'orders', 'bob');
      const { ctx, out } = await cli({ json: true });
      await dlqShow(ctx, { seq: b.seq });
      const shown = out.json<Record<string, unknown>>();
      expect(shown.body).toEqual([b.event]);
      expect(shown.headers).toMatchObject({ [Headers.handler]: ['orders'], [Headers.originalSubject]: [b.subject] });
    });

    it('shows the raw bytes of a malformed body and why it is not an envelope', async () => {
      const c = await malformed('processor', 1);
      const { ctx, out } = await cli();
      await dlqShow(ctx, { seq: c.seq });
      expect(out.stdout).toEqual(expect.arrayContaining([expect.stringMatching(/^body: not a batch envelope: not JSON .*\(9 bytes\)$/), 'not json{']));
    });

    it('names a sequence that is not in the DLQ', async () => {
      const { ctx } = await cli();
      await expect(dlqShow(ctx, { seq: 999_999 })).rejects.toThrow(
        new CliError(`no dead letter with sequence 999999 in ${Streams.dlq}; list them with 'mesh dlq ls'`),
      );
    });
  });

  describe('redrive', () => {
    it('republishes the exact body to the original subject once, then deletes the dead letter', async () => {
      const b = await failedInHandler(1, 'redrive-exact', 'bob');
      const { ctx, out } = await cli();
      await dlqRedrive(ctx, { seqs: [b.seq] });

      const again = await jsm.streams.getMessage(Streams.routed, { last_by_subj: b.subject });
      expect(Buffer.from(again!.data).equals(Buffer.from(b.payload))).toBe(true);
      expect(again!.header.get('Mesh-Redrive')).toBe(String(b.seq));
      expect(again!.header.get(Headers.msgId)).toBe(`redrive:${b.seq}`);
      expect(await stored(b.subject)).toBe(1);
      expect(await inDlq(b.seq)).toBe(false);
      expect(out.stdout).toEqual([`redrove dead letter ${b.seq} to ${b.subject} (${Streams.routed} sequence ${again!.seq}); deleted it from ${Streams.dlq}`]);
    });

    it('stores the event once when a redrive that lost its delete is run again', async () => {
      const b = await failedInHandler(2, 'redrive-twice', 'bob');
      // The publish is acknowledged, then the delete fails (as if the operator's connection dropped).
      const realJsm = (await cli()).ctx.jsm;
      const streams = Object.create(realJsm.streams);
      streams.deleteMessage = () => Promise.reject(new Error('connection lost'));
      const broken = Object.assign(Object.create(realJsm), { streams });
      const first = await cli({ jsm: broken });
      await expect(dlqRedrive(first.ctx, { seqs: [b.seq] })).rejects.toThrow(
        /^dead letter \d+ was republished \(MESH_ROUTED sequence \d+\) but could not be deleted from MESH_DLQ: connection lost; redrive it again/,
      );
      expect(await inDlq(b.seq)).toBe(true);
      expect(await stored(b.subject)).toBe(1);

      const { ctx, out } = await cli();
      await dlqRedrive(ctx, { seqs: [b.seq] });
      expect(out.text).toMatch(/already stored as MESH_ROUTED sequence \d+ by an earlier redrive/);
      expect(await stored(b.subject)).toBe(1);
      expect(await inDlq(b.seq)).toBe(false);
    });

    it('puts a router dead letter back on its ingest subject', async () => {
      const a = await unroutable(3, 'erin');
      const { ctx } = await cli({ json: true });
      await dlqRedrive(ctx, { seqs: [a.seq] });
      const again = await jsm.streams.getMessage(Streams.ingest, { last_by_subj: a.subject });
      expect(Buffer.from(again!.data).equals(Buffer.from(a.payload))).toBe(true);
      expect(await inDlq(a.seq)).toBe(false);
    });

    it('refuses a dead letter whose body is not an envelope, and keeps it', async () => {
      const c = await malformed('processor', 2);
      const { ctx } = await cli();
      await expect(dlqRedrive(ctx, { seqs: [c.seq] })).rejects.toThrow(
        /^dead letter \d+ cannot be redriven: its body is not a batch envelope \(a JSON array of CloudEvents\): not JSON .*; it stays in MESH_DLQ$/,
      );
      expect(await inDlq(c.seq)).toBe(true);
      const processed = await jsm.streams.info(Streams.processed, { subjects_filter: c.subject });
      expect(processed.state.subjects?.[c.subject] ?? 0).toBe(0);
    });

    it('refuses a dead letter without an original subject, and keeps it', async () => {
      const h = natsHeaders();
      h.set(Headers.stage, 'processor');
      const ack = await js.publish(Subjects.dlq('processor', 1), encodeEnvelope([orderEvent('frank', 1, 1)]), { headers: h });
      const { ctx } = await cli();
      await expect(dlqRedrive(ctx, { seqs: [ack.seq] })).rejects.toThrow(
        `dead letter ${ack.seq} cannot be redriven: it has no Mesh-Original-Subject header, so where it failed is unknown; it stays in MESH_DLQ`,
      );
      expect(await inDlq(ack.seq)).toBe(true);
    });

    it('refuses a dead letter whose original subject no stage consumes, and keeps it', async () => {
      const ack = await deadLetter(js, {
        stage: 'ingest',
        partition: 0,
        error: new Error('x'),
        attempts: 1,
        originalStream: Streams.ingest,
        originalSubject: Subjects.inbound('order.created'),
        originalSequence: ++origin,
        index: 0,
        payload: encodeEnvelope([orderEvent('gina', 1, 1)]),
      });
      const { ctx } = await cli();
      await expect(dlqRedrive(ctx, { seqs: [ack.seq] })).rejects.toThrow(
        `dead letter ${ack.seq} cannot be redriven: its original subject 'mesh.in.order.created' is not a stage input; ` +
          'accepted: mesh.ingest.>, mesh.routed.> or mesh.processed.>; it stays in MESH_DLQ',
      );
      expect(await inDlq(ack.seq)).toBe(true);
    });

    it('--all redrives the valid dead letters of a stage, refuses the malformed ones and leaves other stages alone', async () => {
      const a = await unroutable(0, 'alice');
      const b = await failedInHandler(2, 'redrive-all', 'bob');
      const c = await malformed('processor', 2);
      const d = await failedInHandler(3, 'redrive-all', 'carol');
      const { ctx, out } = await cli({ json: true });
      await expect(dlqRedrive(ctx, { all: true, stage: 'processor' })).rejects.toThrow(`refused 1 dead letter: ${c.seq}`);
      const report = out.json<{ redriven: { seq: number }[]; refused: { seq: number; problem: string }[] }>();
      expect(report.redriven.map((r) => r.seq)).toEqual([b.seq, d.seq]);
      expect(report.refused).toEqual([{ seq: c.seq, problem: expect.stringMatching(/^its body is not a batch envelope/) }]);
      expect([await inDlq(a.seq), await inDlq(b.seq), await inDlq(c.seq), await inDlq(d.seq)]).toEqual([true, false, true, false]);
      expect(await stored(b.subject)).toBe(1);
      expect(await stored(d.subject)).toBe(1);
    });

    it('--all with nothing to do says so', async () => {
      const { ctx, out } = await cli();
      await dlqRedrive(ctx, { all: true });
      expect(out.stdout).toEqual(['no dead letters to redrive']);
    });

    it('redrives several sequences in turn, reports the one it refuses or cannot find, and goes on with the rest', async () => {
      const a = await unroutable(1, 'hana');
      const c = await malformed('processor', 1);
      const b = await failedInHandler(1, 'redrive-several', 'ivan');
      const { ctx, out } = await cli();
      const absent = b.seq + 100;
      await expect(dlqRedrive(ctx, { seqs: [a.seq, c.seq, absent, b.seq] })).rejects.toThrow(`refused 2 dead letters: ${c.seq}, ${absent}`);
      expect([await inDlq(a.seq), await inDlq(c.seq), await inDlq(b.seq)]).toEqual([false, true, false]);
      expect(await stored(a.subject)).toBe(1);
      expect(await stored(b.subject)).toBe(1);
      expect(out.stdout).toEqual([
        expect.stringMatching(new RegExp(`^redrove dead letter ${a.seq} to ${a.subject.replace(/\./g, '\\.')} `)),
        expect.stringMatching(new RegExp(`^redrove dead letter ${b.seq} to ${b.subject.replace(/\./g, '\\.')} `)),
        'redrove 2, refused 2 (refused ones stay in MESH_DLQ)',
      ]);
      expect(out.stderr).toEqual([
        expect.stringMatching(new RegExp(`^dead letter ${c.seq} cannot be redriven: its body is not a batch envelope`)),
        `no dead letter with sequence ${absent} in MESH_DLQ; list them with 'mesh dlq ls'`,
      ]);
    });
  });

  describe('rm', () => {
    it('removes the dead letters given by sequence, printing each one, and leaves the others', async () => {
      const a = await unroutable(0, 'jo');
      const b = await failedInHandler(2, 'rm-some', 'kim');
      const c = await malformed('aggregator', 3);
      const { ctx, out } = await cli();
      await dlqRemove(ctx, { seqs: [c.seq, a.seq] });
      expect([await inDlq(a.seq), await inDlq(b.seq), await inDlq(c.seq)]).toEqual([false, true, false]);
      expect(out.stdout).toEqual([
        `removed dead letter ${c.seq} (mesh.dlq.aggregator.3, (malformed)): malformed envelope: not JSON`,
        `removed dead letter ${a.seq} (mesh.dlq.router.0, ${a.event!.id}): no handler or rule takes order.unknown`,
        'removed 2 dead letters from MESH_DLQ',
      ]);
      // Discarded, not redriven: nothing went back to a stage.
      expect(await stored(a.subject)).toBe(0);
    });

    it('removes those it finds and fails naming the sequences it did not find', async () => {
      const a = await unroutable(0, 'lee');
      const { ctx, out } = await cli({ json: true });
      await expect(dlqRemove(ctx, { seqs: [a.seq + 50, a.seq] })).rejects.toThrow(
        `found no dead letter with sequence ${a.seq + 50}; list them with 'mesh dlq ls'`,
      );
      expect(await inDlq(a.seq)).toBe(false);
      const report = out.json<{ removed: { seq: number; subject: string }[]; missing: { seq: number }[] }>();
      expect(report.removed).toEqual([expect.objectContaining({ seq: a.seq, subject: 'mesh.dlq.router.0' })]);
      expect(report.missing.map((m) => m.seq)).toEqual([a.seq + 50]);
    });

    it('--all removes the dead letters of a stage and partition only', async () => {
      const a = await unroutable(2, 'max');
      const b = await failedInHandler(2, 'rm-all', 'ned');
      const c = await failedInHandler(3, 'rm-all', 'ola');
      const d = await malformed('processor', 2);
      const { ctx, out } = await cli();
      await dlqRemove(ctx, { all: true, stage: 'processor', partition: 2 });
      expect([await inDlq(a.seq), await inDlq(b.seq), await inDlq(c.seq), await inDlq(d.seq)]).toEqual([true, false, true, false]);
      expect(out.stdout.map((l) => l.replace(/^(removed dead letter \d+).*/, '$1'))).toEqual([
        `removed dead letter ${b.seq}`,
        `removed dead letter ${d.seq}`,
        'removed 2 dead letters from MESH_DLQ',
      ]);
    });

    it('--all with nothing to remove says so', async () => {
      await unroutable(0, 'pia');
      const { ctx, out } = await cli();
      await dlqRemove(ctx, { all: true, stage: 'aggregator' });
      expect(out.stdout).toEqual(['no dead letters to remove']);
    });
  });
});
