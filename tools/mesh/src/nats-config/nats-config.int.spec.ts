/**
 * The generated config under a real nats-server (2.9, TLS with verified
 * client certificates): each service's credentials are refused for what
 * it must not do and accepted for what it needs, and the admin provisions.
 * A refusal is asserted twice: the server's "Permissions Violation" answer,
 * and, where something could have been written, the admin seeing nothing.
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AckPolicy, jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import {
  aggregateKvKey,
  Buckets,
  checkpointKey,
  Headers,
  consumerName,
  JsApi,
  kvStream,
  kvSubject,
  MeshServices,
  retryRecordPrefix,
  RouteKeyPrefix,
  serviceInboxPrefix,
  ReplayEpochKey,
  replayAckKey,
  SinkConsumer,
  Stages,
  StageInput,
  Streams,
  Subjects,
  type MeshService,
} from '@mesh/contracts';
import { ensurePartitionConsumers, partitionConsumerConfig, provisionMesh } from '@mesh/messaging';
import { headers as natsHeaders } from '@nats-io/nats-core';
import { allStages, getDeadLetter, partitionRows, readDeadLetters, redriveOne, routeEntries, storeRule, type MeshContext } from '@mesh/operations';
import { credentialOptions, readEnvFile, startNatsServer, type NatsServer } from '@mesh/testing';
import { MemoryOutput } from '../output';
import { createCertificateAuthority, issueCertificate } from './certificates';
import { Identities, writeNatsConfig, type Identity, type WrittenNatsConfig } from './nats-config';

const P = 4;
const consumerOptions = { maxAckPending: 32, ackWaitMs: 30_000 };
const refused = (subject: string) => new RegExp(`Permissions Violation for (Publish|Subscription) to "${subject.replace(/[$.*>]/g, '\\$&')}"`);
const anyRefusal = /Permissions Violation for (Publish|Subscription) to/;

describe('mesh nats-config --tls under nats-server', () => {
  let dir: string;
  let written: WrittenNatsConfig;
  let server: NatsServer;
  const conns = new Map<Identity, NatsConnection>();

  const envOf = (identity: Identity) => readEnvFile(written.envFiles[identity]);
  /** A client as `identity`, with the inbox prefix the services use (the admin keeps _INBOX, as the CLI does). */
  const open = (identity: Identity, extra: Parameters<typeof connect>[0] = {}) =>
    connect({
      servers: server.url,
      reconnect: false,
      timeout: 5_000,
      ...(identity === 'admin' ? {} : { inboxPrefix: serviceInboxPrefix(identity) }),
      ...credentialOptions(envOf(identity)),
      ...extra,
    });
  const as = (identity: Identity) => conns.get(identity)!;
  const jsOf = (identity: Identity): JetStreamClient => jetstream(as(identity), { timeout: 5_000 });
  const jsmOf = (identity: Identity): Promise<JetStreamManager> => jetstreamManager(as(identity), { timeout: 5_000 });
  const kvOf = (identity: Identity, bucket: string) => new Kvm(as(identity)).open(bucket);
  const adminKv = (bucket: string) => kvOf('admin', bucket);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mesh-nats-config-'));
    written = writeNatsConfig(
      { out: join(dir, 'conf'), tls: true, partitions: P, hosts: ['nats.internal'], force: false, handlerServices: ['refunds'] },
      new MemoryOutput(),
    );
    server = await startNatsServer({ args: ['-c', written.serverConfig] });
    for (const identity of Identities) conns.set(identity, await open(identity));
  });
  afterAll(async () => {
    for (const nc of conns.values()) await nc.close().catch(() => undefined);
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('writes secrets readable by their owner only and env files of absolute paths without NATS_URL', () => {
    for (const identity of Identities) {
      const env = envOf(identity);
      expect(Object.keys(env).sort()).toEqual(['NATS_NKEY_SEED_FILE', 'NATS_TLS_CA', 'NATS_TLS_CERT', 'NATS_TLS_KEY']);
      for (const path of Object.values(env)) expect(path.startsWith('/')).toBe(true);
      for (const secret of [env.NATS_NKEY_SEED_FILE, env.NATS_TLS_KEY, written.envFiles[identity]]) expect(statSync(secret).mode & 0o777).toBe(0o600);
      expect(readFileSync(env.NATS_NKEY_SEED_FILE, 'utf8')).toMatch(/^SU[A-Z2-7]{56}\n$/);
    }
  });

  it('is a server that requires TLS', () => {
    expect(server.tls).toBe(true);
    expect(server.url.startsWith('tls://')).toBe(true);
  });

  it('refuses a client whose certificate comes from another CA, even with a valid nkey', async () => {
    const other = createCertificateAuthority('another CA');
    const client = issueCertificate(other, { commonName: 'ingest', usage: 'client' });
    const env = envOf('ingest');
    await expect(
      connect({
        servers: server.url,
        reconnect: false,
        timeout: 3_000,
        ...credentialOptions(env),
        tls: { caFile: env.NATS_TLS_CA, cert: client.certPem, key: client.keyPem },
      }),
    ).rejects.toThrow();
  });

  it('lets the admin provision streams, buckets and every partition consumer', async () => {
    await provisionMesh(as('admin'), { partitions: P });
    for (const stage of Stages) await ensurePartitionConsumers(as('admin'), stage, P, consumerOptions);
    const jsm = await jsmOf('admin');
    for (const stream of Object.values(Streams)) expect((await jsm.streams.info(stream)).config.name).toBe(stream);
    for (const stage of Stages) {
      const names = [];
      for await (const c of jsm.consumers.list(StageInput[stage])) names.push(c.name);
      expect(names.sort()).toEqual(Array.from({ length: P }, (_, p) => consumerName(stage, p)));
    }
  });

  describe('ingest', () => {
    it('stores events in MESH_INGEST and answers NATS requests in its queue group', async () => {
      const ack = await jsOf('ingest').publish(Subjects.ingest(1, 'order.created'), '[]', { msgID: 'int:ingest:1' });
      expect(ack.stream).toBe(Streams.ingest);
      const sub = as('ingest').subscribe(Subjects.inboundAll, { queue: 'mesh-ingest', callback: (_err, msg) => void msg.respond('{"status":202}') });
      await as('ingest').flush();
      const answer = await as('admin').request(Subjects.inbound('order.created'), '{}', { timeout: 5_000 });
      expect(answer.string()).toBe('{"status":202}');
      sub.unsubscribe();
    });

    it('cannot take mesh.in requests outside its queue group (it would see every request)', async () => {
      const sub = as('ingest').subscribe(Subjects.inboundAll);
      expect(String(await sub.closed)).toMatch(refused(Subjects.inboundAll));
    });

    it('cannot create a consumer on any stream, nor pull or read a stage consumer', async () => {
      const jsm = await jsmOf('ingest');
      for (const stream of Object.values(Streams)) {
        await expect(jsm.consumers.add(stream, { durable_name: 'spy', ack_policy: AckPolicy.Explicit })).rejects.toThrow(anyRefusal);
      }
      await expect(jsm.consumers.info(Streams.ingest, consumerName('router', 0))).rejects.toThrow(anyRefusal);
      await expect(as('ingest').request(JsApi.consumerNext(Streams.ingest, consumerName('router', 0)), '{"batch":1}')).rejects.toThrow(
        refused(JsApi.consumerNext(Streams.ingest, consumerName('router', 0))),
      );
      // An ordered consumer (what `nats sub` or a KV watch would create) is refused too.
      await expect(jsOf('ingest').consumers.get(Streams.ingest)).rejects.toThrow(anyRefusal);
      const names = [];
      for await (const c of (await jsmOf('admin')).consumers.list(Streams.ingest)) names.push(c.name);
      expect(names).not.toContain('spy');
    });

    it('cannot read mesh_checkpoints, but for the recorded partition count', async () => {
      await (await adminKv(Buckets.checkpoints)).put(checkpointKey('aggregator', 0), '{"secret":true}');
      const kv = await kvOf('ingest', Buckets.checkpoints);
      await expect(kv.get(checkpointKey('aggregator', 0))).rejects.toThrow(refused(JsApi.streamMsgGet(kvStream(Buckets.checkpoints))));
      const direct = JsApi.directGetLast(kvStream(Buckets.checkpoints), kvSubject(Buckets.checkpoints, checkpointKey('aggregator', 0)));
      await expect(as('ingest').request(direct, '')).rejects.toThrow(refused(direct));
      await expect(kv.watch({ key: '>' })).rejects.toThrow(anyRefusal);
      const partitions = await as('ingest').request(JsApi.directGetLast(kvStream(Buckets.checkpoints), kvSubject(Buckets.checkpoints, 'mesh.partitions')), '');
      expect(partitions.string()).toBe(String(P));
    });
  });

  describe('router', () => {
    it('pulls and acks its partition consumer, rebuilds dedup from its partition and routes to MESH_ROUTED', async () => {
      await jsOf('admin').publish(Subjects.ingest(2, 'order.created'), '[]', { msgID: 'int:router:1' });
      const consumer = await jsOf('router').consumers.get(Streams.ingest, consumerName('router', 2));
      const m = await consumer.next({ expires: 5_000 });
      expect(m?.subject).toBe(Subjects.ingest(2, 'order.created'));
      expect(await m!.ackAck()).toBe(true);
      const ordered = await jsOf('router').consumers.get(Streams.ingest, { filter_subjects: Subjects.ingestPartition(2) });
      expect((await ordered.next({ expires: 5_000 }))?.subject).toBe(Subjects.ingest(2, 'order.created'));
      await ordered.delete();
      expect((await jsOf('router').publish(Subjects.routed('processor', 2, 'orders'), '[]', { msgID: 'int:router:2' })).stream).toBe(Streams.routed);
      expect((await jsOf('router').publish(Subjects.dlq('router', 2), '[]', { msgID: 'int:router:3' })).stream).toBe(Streams.dlq);
    });

    it("cannot read a stream but its partitions of MESH_INGEST, nor touch another stage's consumer", async () => {
      await expect(jsOf('router').consumers.get(Streams.routed)).rejects.toThrow(anyRefusal);
      await expect(jsOf('router').consumers.get(Streams.ingest)).rejects.toThrow(anyRefusal);
      await expect((await jsmOf('router')).consumers.delete(Streams.routed, consumerName('processor', 0))).rejects.toThrow(anyRefusal);
    });

    it("writes its own member and lease keys, and no checkpoint key (it keeps none), least of all another stage's", async () => {
      for (const stage of Stages) {
        await expect((await kvOf('router', Buckets.checkpoints)).put(checkpointKey(stage, 0), '{}')).rejects.toThrow(
          refused(kvSubject(Buckets.checkpoints, checkpointKey(stage, 0))),
        );
        if (stage === 'router') continue;
        await expect((await kvOf('router', Buckets.leases)).put(`${stage}.00`, '{}')).rejects.toThrow(refused(kvSubject(Buckets.leases, `${stage}.00`)));
        await expect((await kvOf('router', Buckets.members)).put(`${stage}.r1`, '{}')).rejects.toThrow(anyRefusal);
      }
      await (await kvOf('router', Buckets.leases)).create('router.00', '{}');
      await (await kvOf('router', Buckets.members)).put('router.r1', '{}');
      expect((await (await adminKv(Buckets.checkpoints)).get(checkpointKey('aggregator', 0)))?.string()).toBe('{"secret":true}');
    });

    it('watches the route table but cannot change it', async () => {
      await (await adminKv(Buckets.routes)).put(`${RouteKeyPrefix.handler}orders`, '{"types":["order.*"]}');
      const watch = await (await kvOf('router', Buckets.routes)).watch({ key: '>' });
      for await (const e of watch) {
        expect(e.key).toBe(`${RouteKeyPrefix.handler}orders`);
        break;
      }
      await expect((await kvOf('router', Buckets.routes)).put(`${RouteKeyPrefix.rule}evil`, '{}')).rejects.toThrow(anyRefusal);
    });
  });

  describe('processor', () => {
    it('cannot publish to mesh.ingest.>', async () => {
      const before = (await (await jsmOf('admin')).streams.info(Streams.ingest)).state.messages;
      await expect(jsOf('processor').publish(Subjects.ingest(0, 'order.created'), '[]')).rejects.toThrow(refused(Subjects.ingest(0, 'order.created')));
      expect((await (await jsmOf('admin')).streams.info(Streams.ingest)).state.messages).toBe(before);
    });

    it('resets its partition consumer, pulls, publishes to MESH_PROCESSED, keeps retry records and declares handlers', async () => {
      const jsm = await jsmOf('processor');
      const stream = StageInput.processor;
      const config = partitionConsumerConfig('processor', 1, consumerOptions);
      expect((await jsm.consumers.info(stream, config.durable_name!)).name).toBe(consumerName('processor', 1));
      await jsm.consumers.delete(stream, config.durable_name!);
      await jsm.consumers.add(stream, config);
      await jsOf('admin').publish(Subjects.routed('processor', 1, 'orders'), '[]', { msgID: 'int:processor:1' });
      const m = await (await jsOf('processor').consumers.get(stream, consumerName('processor', 1))).next({ expires: 5_000 });
      m!.nak(10);
      expect((await jsOf('processor').publish(Subjects.processed(1, 'order.validated'), '[]', { msgID: 'int:processor:2' })).stream).toBe(Streams.processed);
      const checkpoints = await kvOf('processor', Buckets.checkpoints);
      await checkpoints.create(`${retryRecordPrefix(1)}7`, '{}');
      expect((await checkpoints.get(`${retryRecordPrefix(1)}7`))?.string()).toBe('{}');
      await jsm.streams.purge(kvStream(Buckets.checkpoints), { filter: kvSubject(Buckets.checkpoints, `${retryRecordPrefix(1)}7`) });
      await (await kvOf('processor', Buckets.routes)).put(`${RouteKeyPrefix.handler}orders`, '{"types":["order.*"]}');
      await expect((await kvOf('processor', Buckets.routes)).put(`${RouteKeyPrefix.rule}evil`, '{}')).rejects.toThrow(anyRefusal);
    });

    it('cannot touch the consumers of another stage', async () => {
      const jsm = await jsmOf('processor');
      await expect(jsm.consumers.info(Streams.processed, consumerName('aggregator', 0))).rejects.toThrow(anyRefusal);
      await expect(jsm.consumers.delete(Streams.ingest, consumerName('router', 0))).rejects.toThrow(anyRefusal);
    });
  });

  describe('a handler service (--handler-service refunds)', () => {
    it('uses its own partition consumers, declares and reads handler records, and touches nothing of the processor', async () => {
      conns.set('refunds', await open('refunds'));
      const jsm = await jsmOf('refunds');
      await jsm.consumers.add(Streams.routed, partitionConsumerConfig('refunds', 2, consumerOptions));
      await jsOf('admin').publish(Subjects.routed('refunds', 2, 'refunds'), '[]', { msgID: 'int:refunds:1' });
      const m = await (await jsOf('refunds').consumers.get(Streams.routed, consumerName('refunds', 2))).next({ expires: 5_000 });
      expect(m?.subject).toBe(Subjects.routed('refunds', 2, 'refunds'));
      m!.ack();
      expect((await jsOf('refunds').publish(Subjects.processed(2, 'refund.approved'), '[]', { msgID: 'int:refunds:2' })).stream).toBe(Streams.processed);
      const routes = await new Kvm(as('refunds')).open(Buckets.routes, { allow_direct: true });
      await routes.put(`${RouteKeyPrefix.handler}refunds`, '{"types":["refund.requested"],"service":"refunds"}');
      expect((await routes.get(`${RouteKeyPrefix.handler}refunds`))?.string()).toContain('"service":"refunds"');
      const watch = await routes.watch({ key: `${RouteKeyPrefix.handler}>` });
      for await (const e of watch) {
        expect(e.key.startsWith(RouteKeyPrefix.handler)).toBe(true);
        break;
      }
      const checkpoints = await kvOf('refunds', Buckets.checkpoints);
      await checkpoints.create(`${retryRecordPrefix(2, 'refunds')}5`, '{}');
      await (await kvOf('refunds', Buckets.members)).put('refunds.r1', '{"handlers":["refunds"]}');
      await expect(checkpoints.put(checkpointKey('processor', 0), '{}')).rejects.toThrow(anyRefusal);
      await expect((await kvOf('refunds', Buckets.members)).put('processor.r1', '{}')).rejects.toThrow(anyRefusal);
      await expect(jsm.consumers.info(Streams.routed, consumerName('processor', 0))).rejects.toThrow(anyRefusal);
      await expect(jsm.consumers.add(Streams.routed, partitionConsumerConfig('processor', 0, consumerOptions))).rejects.toThrow(anyRefusal);
      await expect(jsOf('refunds').publish(Subjects.dlq('processor', 0), '[]')).rejects.toThrow(anyRefusal);
      await jsOf('refunds').publish(Subjects.dlq('refunds', 0), '[]');
    });
  });

  describe('aggregator', () => {
    it('is the only service that can write mesh_aggregates', async () => {
      for (const service of ['ingest', 'router', 'processor'] as const) {
        await expect((await kvOf(service, Buckets.aggregates)).put(`totals.by-${service}`, '{}')).rejects.toThrow(
          refused(kvSubject(Buckets.aggregates, `totals.by-${service}`)),
        );
      }
      await (await kvOf('aggregator', Buckets.aggregates)).put('totals.k1', '{"count":1}');
      const results = await adminKv(Buckets.aggregates);
      expect((await results.get('totals.k1'))?.string()).toBe('{"count":1}');
      for (const service of ['ingest', 'router', 'processor']) expect(await results.get(`totals.by-${service}`)).toBeNull();
      expect((await (await kvOf('aggregator', Buckets.aggregates)).get('totals.k1'))?.string()).toBe('{"count":1}');
    });

    it('checkpoints, lists its chunks, consumes its partitions and publishes closed windows', async () => {
      const checkpoints = await kvOf('aggregator', Buckets.checkpoints);
      await checkpoints.put(checkpointKey('aggregator', 3), '{"head":true}');
      await checkpoints.put(`${checkpointKey('aggregator', 3)}.c01.0`, '{}');
      const keys = [];
      for await (const k of await checkpoints.keys(`${checkpointKey('aggregator', 3)}.>`)) keys.push(k);
      expect(keys).toEqual([`${checkpointKey('aggregator', 3)}.c01.0`]);
      await expect(checkpoints.put(checkpointKey('processor', 3), '{}')).rejects.toThrow(anyRefusal);
      expect((await (await jsmOf('aggregator')).consumers.info(Streams.processed, consumerName('aggregator', 3))).name).toBe(consumerName('aggregator', 3));
      expect((await jsOf('aggregator').publish(Subjects.aggregates('totals'), '{}', { msgID: 'int:agg:1' })).stream).toBe(Streams.aggregates);
      expect((await jsOf('aggregator').publish(Subjects.aggregatesLate('totals'), '{}', { msgID: 'int:agg:2' })).stream).toBe(Streams.aggregates);
    });
  });

  describe('console', () => {
    const ctx = async (): Promise<MeshContext> => ({ nc: as('console'), js: jsOf('console'), jsm: await jsmOf('console'), natsUrl: server.url });

    it('reads partitions, the route table and dead letters, and redrives one where it failed', async () => {
      // Every stage the console finds (handler services of earlier cases too), each with all its partitions.
      const stages = await allStages(await ctx());
      expect(stages).toEqual(expect.arrayContaining([...Stages]));
      expect((await partitionRows(await ctx(), {})).length).toBe(stages.length * P);
      await (await adminKv(Buckets.routes)).put(`${RouteKeyPrefix.handler}orders`, '{"types":["order.created"]}');
      expect((await routeEntries(await ctx())).map((e) => `${e.kind}.${e.name}`)).toContain('handler.orders');

      const h = natsHeaders();
      h.set(Headers.stage, 'router');
      h.set(Headers.originalSubject, Subjects.ingest(0, 'order.lost'));
      const event = { specversion: '1.0', id: 'console-1', source: 'int', type: 'order.lost' };
      const dead = await jsOf('admin').publish(Subjects.dlq('router', 0), JSON.stringify([event]), { headers: h });
      const { letters } = await readDeadLetters(await ctx(), { filter: Subjects.dlqAll, limit: 100 });
      expect(letters.map((d) => d.seq)).toContain(dead.seq);
      const redriven = await redriveOne(await ctx(), await getDeadLetter(await ctx(), dead.seq));
      expect(redriven.stream).toBe(Streams.ingest);
      await expect((await jsmOf('admin')).streams.getMessage(Streams.dlq, { seq: dead.seq })).resolves.toBeNull();
    });

    it('tails the stage subjects and watches an aggregation key', async () => {
      const tail = as('console').subscribe(Subjects.routedAll, { max: 1 });
      await as('console').flush();
      await jsOf('admin').publish(Subjects.routed('processor', 1, 'orders'), '[]');
      for await (const m of tail) expect(m.subject).toBe(Subjects.routed('processor', 1, 'orders'));
      await (await adminKv(Buckets.aggregates)).put(aggregateKvKey('totals', 'k1'), '{"windows":[]}');
      const watch = await (await kvOf('console', Buckets.aggregates)).watch({ key: aggregateKvKey('totals', 'k1') });
      for await (const e of watch) {
        expect(e.string()).toBe('{"windows":[]}');
        break;
      }
    });

    it("writes operators' rules and nothing else of the route table", async () => {
      await storeRule(await ctx(), 'by-console', { match: 'order.*', to: ['orders'] });
      expect((await (await adminKv(Buckets.routes)).get(`${RouteKeyPrefix.rule}by-console`))?.json()).toEqual({ match: 'order.*', to: ['orders'] });
      await expect((await kvOf('console', Buckets.routes)).put(`${RouteKeyPrefix.handler}evil`, '{}')).rejects.toThrow(
        refused(kvSubject(Buckets.routes, `${RouteKeyPrefix.handler}evil`)),
      );
    });

    it("cannot take a lease, write a result or checkpoint, nor pull, ack or reset a stage's consumer", async () => {
      await expect((await kvOf('console', Buckets.leases)).put('processor.00', '{"owner":"console"}')).rejects.toThrow(anyRefusal);
      await expect((await kvOf('console', Buckets.aggregates)).put('totals.x', '{}')).rejects.toThrow(anyRefusal);
      await expect((await kvOf('console', Buckets.checkpoints)).put(checkpointKey('aggregator', 0), '{}')).rejects.toThrow(anyRefusal);
      await expect(as('console').request(JsApi.consumerNext(Streams.routed, consumerName('processor', 0)), '{"batch":1}')).rejects.toThrow(anyRefusal);
      await expect((await jsmOf('console')).consumers.delete(Streams.routed, consumerName('processor', 0))).rejects.toThrow(
        refused(JsApi.consumerDelete(Streams.routed, consumerName('processor', 0))),
      );
      await expect(jsOf('console').publish(Subjects.aggregates('totals'), '{}')).rejects.toThrow(refused(Subjects.aggregates('totals')));
    });
  });

  describe('sink', () => {
    const results = kvStream(Buckets.aggregates);

    it('creates its consumer of the results stream, pulls every result and acks it', async () => {
      await (await kvOf('aggregator', Buckets.aggregates)).put('totals.for-sink', '{"name":"totals","key":"for-sink","windows":[]}');
      const jsm = await jsmOf('sink');
      await jsm.consumers.add(results, { durable_name: SinkConsumer, filter_subject: kvSubject(Buckets.aggregates, '>'), ack_policy: AckPolicy.Explicit });
      const consumer = await jsOf('sink').consumers.get(results, SinkConsumer);
      const seen: string[] = [];
      for (;;) {
        const m = await consumer.next({ expires: 2_000 });
        if (!m) break;
        seen.push(m.subject);
        await m.ackAck();
      }
      expect(seen).toContain(kvSubject(Buckets.aggregates, 'totals.for-sink'));
      const info = await jsm.consumers.info(results, SinkConsumer);
      expect([info.num_pending, info.num_ack_pending]).toEqual([0, 0]);
    });

    it('cannot write results, publish closed windows, nor touch any other consumer', async () => {
      await expect((await kvOf('sink', Buckets.aggregates)).put('totals.by-sink', '{}')).rejects.toThrow(
        refused(kvSubject(Buckets.aggregates, 'totals.by-sink')),
      );
      expect(await (await adminKv(Buckets.aggregates)).get('totals.by-sink')).toBeNull();
      await expect(jsOf('sink').publish(Subjects.aggregates('totals'), '{}')).rejects.toThrow(refused(Subjects.aggregates('totals')));
      const jsm = await jsmOf('sink');
      await expect(
        jsm.consumers.add(results, { durable_name: 'other', filter_subject: kvSubject(Buckets.aggregates, '>'), ack_policy: AckPolicy.Explicit }),
      ).rejects.toThrow(anyRefusal);
      await expect(jsm.consumers.add(Streams.processed, { durable_name: SinkConsumer, ack_policy: AckPolicy.Explicit })).rejects.toThrow(anyRefusal);
      await expect(jsm.consumers.info(Streams.processed, consumerName('aggregator', 0))).rejects.toThrow(
        refused(JsApi.consumerInfo(Streams.processed, consumerName('aggregator', 0))),
      );
      await expect(as('sink').request(JsApi.consumerNext(Streams.processed, consumerName('aggregator', 0)), '{"batch":1}')).rejects.toThrow(anyRefusal);
      await expect((await kvOf('sink', Buckets.checkpoints)).get(checkpointKey('aggregator', 0))).rejects.toThrow(anyRefusal);
    });
  });

  describe.each(MeshServices)('%s', (service: MeshService) => {
    it('cannot create, update or delete a stream or bucket', async () => {
      const jsm = await jsmOf(service);
      await expect(jsm.streams.add({ name: 'MESH_EVIL', subjects: ['evil.>'] })).rejects.toThrow(refused(JsApi.streamCreate('MESH_EVIL')));
      await expect(jsm.streams.update(Streams.ingest, { max_age: 1 })).rejects.toThrow(anyRefusal);
      await expect(jsm.streams.delete(Streams.ingest)).rejects.toThrow(refused(JsApi.streamDelete(Streams.ingest)));
      await expect(jsm.streams.delete(kvStream(Buckets.checkpoints))).rejects.toThrow(anyRefusal);
      await expect(new Kvm(as(service)).create('evil')).rejects.toThrow(anyRefusal);
      const admin = await jsmOf('admin');
      expect((await admin.streams.info(Streams.ingest)).config.name).toBe(Streams.ingest);
      await expect(admin.streams.info('MESH_EVIL')).rejects.toThrow(/stream not found/);
    });

    it("answers service discovery, and cannot listen to another service's replies", async () => {
      const sub = as(service).subscribe(`$SRV.PING.${service}`, { callback: (_err, msg) => void msg.respond(`pong from ${service}`) });
      await as(service).flush();
      expect((await as('admin').request(`$SRV.PING.${service}`, '', { timeout: 5_000 })).string()).toBe(`pong from ${service}`);
      sub.unsubscribe();
      const other = MeshServices.find((s) => s !== service)!;
      const spy = as(service).subscribe(`${serviceInboxPrefix(other)}.>`);
      expect(String(await spy.closed)).toMatch(refused(`${serviceInboxPrefix(other)}.>`));
    });

    it('cannot publish or subscribe to everything', async () => {
      const spy = as(service).subscribe('>');
      expect(String(await spy.closed)).toMatch(refused('>'));
      await expect(as(service).request('$JS.API.STREAM.LIST', '')).rejects.toThrow(refused('$JS.API.STREAM.LIST'));
    });
  });
  describe('replay signal (mesh replay)', () => {
    it.each(Stages)('%s reads and watches replay.epoch and acks under its own key only', async (stage) => {
      await (await adminKv(Buckets.checkpoints)).put(ReplayEpochKey, JSON.stringify({ epoch: 3, from: 'beginning', phase: 'pause' }));
      const kv = await new Kvm(as(stage)).open(Buckets.checkpoints, { allow_direct: true });
      expect((await kv.get(ReplayEpochKey))?.string()).toContain('"epoch":3');
      const watch = await kv.watch({ key: ReplayEpochKey });
      for await (const e of watch) {
        expect(e.string()).toContain('"phase":"pause"');
        break;
      }
      await kv.put(replayAckKey(stage, 'i1'), '{"epoch":3,"phase":"pause"}');
      expect((await (await adminKv(Buckets.checkpoints)).get(replayAckKey(stage, 'i1')))?.string()).toBe('{"epoch":3,"phase":"pause"}');
      await expect(kv.put(ReplayEpochKey, '{"epoch":4,"from":"beginning","phase":"run"}')).rejects.toThrow(
        refused(kvSubject(Buckets.checkpoints, ReplayEpochKey)),
      );
      const other = Stages.find((s) => s !== stage)!;
      await expect(kv.put(replayAckKey(other, 'i1'), '{}')).rejects.toThrow(refused(kvSubject(Buckets.checkpoints, replayAckKey(other, 'i1'))));
      expect((await (await adminKv(Buckets.checkpoints)).get(ReplayEpochKey))?.string()).toContain('"epoch":3');
    });

    it('ingest and sink may not ack a replay', async () => {
      for (const service of ['ingest', 'sink'] as const) {
        await expect((await kvOf(service, Buckets.checkpoints)).put(replayAckKey('router', 'x'), '{}')).rejects.toThrow(anyRefusal);
      }
    });
  });
});
