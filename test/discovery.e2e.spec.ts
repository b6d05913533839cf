/**
 * NATS service discovery as `nats micro ls|info|stats` uses it: every
 * instance of every service answers $SRV.PING, $SRV.INFO and $SRV.STATS
 * (also addressed by service name), with the instance id its /readyz shows,
 * its endpoints and the counts it keeps.
 */
import { connect } from '@nats-io/transport-node';
import { createInbox, type NatsConnection } from '@nats-io/nats-core';
import { MeshVersion } from '@mesh/contracts';
import {
  eventually,
  orderEvent,
  postEvents,
  startMesh,
  startNatsServer,
  startService,
  stopAll,
  type NatsServer,
  type ServiceName,
  type ServiceProcess,
} from '@mesh/testing';

const SERVICES: ServiceName[] = ['ingest', 'router', 'processor', 'aggregator'];

interface Answer {
  type: string;
  name: string;
  id: string;
  version: string;
  metadata: Record<string, string>;
  endpoints?: { name: string; subject: string; queue_group: string; num_requests?: number; num_errors?: number; metadata?: Record<string, string> }[];
}

async function instanceOf(p: ServiceProcess): Promise<string> {
  return ((await (await fetch(`${p.url}/readyz`)).json()) as { instance: string }).instance;
}

describe('NATS service discovery ($SRV)', () => {
  let server: NatsServer;
  let nc: NatsConnection | undefined;
  let mesh: Record<ServiceName, ServiceProcess> | undefined;
  let second: ServiceProcess | undefined;

  /**
   * Publishes to `subject` with an inbox as reply subject, as `nats micro`
   * does, and collects the answers until `expected` have come (within
   * `timeoutMs`: a slow machine only makes it wait longer), then for `graceMs`
   * more, so that an answer too many shows up: the wait cannot make a correct
   * mesh fail, only an extra answer arriving after it can go unseen.
   */
  async function collect(subject: string, expected: number, timeoutMs = 15_000, graceMs = 250): Promise<Answer[]> {
    const inbox = createInbox();
    const answers: Answer[] = [];
    let enough: () => void = () => undefined;
    const reached = new Promise<void>((r) => (enough = r));
    const sub = nc!.subscribe(inbox, {
      callback: (err, msg) => {
        if (err) return;
        answers.push(msg.json<Answer>());
        if (answers.length >= expected) enough();
      },
    });
    await nc!.flush();
    nc!.publish(subject, '', { reply: inbox });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([reached, new Promise((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
    await new Promise((r) => setTimeout(r, graceMs));
    sub.unsubscribe();
    return answers;
  }

  beforeAll(async () => {
    server = await startNatsServer();
    mesh = await startMesh(server.url);
    nc = await connect({ servers: server.url });
  }, 60_000);

  afterAll(async () => {
    await nc?.close();
    await stopAll([...(mesh ? Object.values(mesh) : []), second]);
    await server?.stop();
  }, 60_000);

  it('answers $SRV.PING once per service, with the instance id /readyz shows', async () => {
    const answers = await collect('$SRV.PING', SERVICES.length);
    expect(answers.map((a) => a.name).sort()).toEqual([...SERVICES].sort());
    for (const name of SERVICES) {
      const answer = answers.find((a) => a.name === name)!;
      expect(answer).toMatchObject({ type: 'io.nats.micro.v1.ping_response', name, id: await instanceOf(mesh![name]), version: MeshVersion });
    }
  });

  it('lists the ingest endpoint mesh.in.> with its queue group in $SRV.INFO.ingest', async () => {
    const answers = await collect('$SRV.INFO.ingest', 1);
    expect(answers).toHaveLength(1);
    const [info] = answers;
    expect(info).toMatchObject({ type: 'io.nats.micro.v1.info_response', name: 'ingest', id: await instanceOf(mesh!.ingest) });
    expect(info.endpoints).toContainEqual(expect.objectContaining({ subject: 'mesh.in.>', queue_group: 'mesh-ingest' }));
  });

  it('reports in $SRV.STATS.processor as many requests as events the processor handled', async () => {
    const N = 120;
    const events = Array.from({ length: N }, (_, n) => orderEvent(`d${n % 12}`, n, 1));
    for (let i = 0; i < N; i += 30) await postEvents(mesh!.ingest.url, events.slice(i, i + 30), 'batch');

    const handled = async () => ((await (await fetch(`${mesh!.processor.url}/v1/handlers`)).json()) as { counters: { processed: number } }).counters.processed;
    expect(await eventually(async () => (await handled()) >= N, 20_000, 200)).toBe(true);
    const requests = async () => {
      const [stats] = await collect('$SRV.STATS.processor', 1, 15_000, 0);
      return stats?.endpoints?.reduce((n, e) => n + (e.num_requests ?? 0), 0) ?? -1;
    };
    // The counts are taken after the ack, a moment after the handler's.
    await eventually(async () => (await requests()) >= N, 20_000, 100);

    const answers = await collect('$SRV.STATS.processor', 1);
    expect(answers).toHaveLength(1);
    const [stats] = answers;
    expect(stats).toMatchObject({ type: 'io.nats.micro.v1.stats_response', name: 'processor', id: await instanceOf(mesh!.processor) });
    expect(stats.endpoints).toHaveLength(1);
    expect(stats.endpoints![0]).toMatchObject({ name: 'consume', subject: 'mesh.routed.processor.>', num_requests: N, num_errors: 0 });
    expect(await handled()).toBe(N);
  }, 40_000);

  it('gets two answers to $SRV.PING.processor once a second processor runs', async () => {
    second = await startService('processor', { NATS_URL: server.url });
    const answers = await collect('$SRV.PING.processor', 2);
    expect(answers.map((a) => a.name)).toEqual(['processor', 'processor']);
    expect(answers.map((a) => a.id).sort()).toEqual([await instanceOf(mesh!.processor), await instanceOf(second)].sort());
    // Each instance also answers by its own id.
    const own = await collect(`$SRV.PING.processor.${await instanceOf(second)}`, 1);
    expect(own.map((a) => a.id)).toEqual([await instanceOf(second)]);
  }, 40_000);
});
