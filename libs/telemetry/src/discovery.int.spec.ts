import type { Msg, NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { startNatsServer, type NatsServer } from '@mesh/testing';
import { startDiscovery } from './discovery';
import { DiscoveryOptionError } from './errors';
import type { Discovery, DiscoveryEndpointStats, DiscoveryOptions } from './types';

/** Every reply to a discovery request within half a second. */
async function ask(nc: NatsConnection, subject: string): Promise<Msg[]> {
  const replies: Msg[] = [];
  for await (const m of await nc.requestMany(subject, '', { strategy: 'timer', maxWait: 500 })) replies.push(m);
  return replies;
}
const json = (msgs: Msg[]) => msgs.map((m) => m.json<Record<string, unknown>>()).sort((a, b) => String(a.id).localeCompare(String(b.id)));

const ingestOptions = (id: string, stats: () => DiscoveryEndpointStats[]): DiscoveryOptions => ({
  name: 'ingest',
  version: '0.1.0',
  id,
  description: 'Accepts CloudEvents over HTTP and NATS and stores them in JetStream',
  metadata: { http: 'http://127.0.0.1:8080' },
  endpoints: [
    { name: 'events', subject: 'mesh.in.>', queueGroup: 'mesh-ingest', metadata: { http: 'POST /v1/events' } },
    { name: 'health', subject: 'mesh.health.ingest' },
  ],
  stats,
});

describe('startDiscovery (real nats-server)', () => {
  let server: NatsServer;
  let nc: NatsConnection;
  let client: NatsConnection;
  const running: Discovery[] = [];

  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connect({ servers: server.url });
    client = await connect({ servers: server.url });
  });
  afterEach(async () => {
    await Promise.all(running.splice(0).map((d) => d.stop()));
  });
  afterAll(async () => {
    await client?.close();
    await nc?.close();
    await server?.stop();
  });

  it('answers $SRV.PING from every instance, and $SRV.PING.<name> only from that service', async () => {
    running.push(
      startDiscovery(
        nc,
        ingestOptions('ingest-a', () => []),
      ),
    );
    running.push(
      startDiscovery(
        nc,
        ingestOptions('ingest-b', () => []),
      ),
    );
    running.push(startDiscovery(nc, { name: 'router', version: '0.2.0', id: 'router-a', endpoints: [] }));
    await nc.flush();

    const all = json(await ask(client, '$SRV.PING'));
    expect(all).toEqual([
      { type: 'io.nats.micro.v1.ping_response', name: 'ingest', id: 'ingest-a', version: '0.1.0', metadata: { http: 'http://127.0.0.1:8080' } },
      { type: 'io.nats.micro.v1.ping_response', name: 'ingest', id: 'ingest-b', version: '0.1.0', metadata: { http: 'http://127.0.0.1:8080' } },
      { type: 'io.nats.micro.v1.ping_response', name: 'router', id: 'router-a', version: '0.2.0', metadata: {} },
    ]);
    expect(json(await ask(client, '$SRV.PING.router')).map((p) => p.id)).toEqual(['router-a']);
    expect(json(await ask(client, '$SRV.PING.ingest.ingest-b')).map((p) => p.id)).toEqual(['ingest-b']);
  });

  it('lists the endpoints on $SRV.INFO.<name>, including ones served by the service itself', async () => {
    running.push(
      startDiscovery(
        nc,
        ingestOptions('ingest-a', () => []),
      ),
    );
    await nc.flush();

    const [info] = json(await ask(client, '$SRV.INFO.ingest'));
    expect(info).toEqual({
      type: 'io.nats.micro.v1.info_response',
      name: 'ingest',
      id: 'ingest-a',
      version: '0.1.0',
      description: 'Accepts CloudEvents over HTTP and NATS and stores them in JetStream',
      metadata: { http: 'http://127.0.0.1:8080' },
      endpoints: [
        { name: 'events', subject: 'mesh.in.>', queue_group: 'mesh-ingest', metadata: { http: 'POST /v1/events' } },
        { name: 'health', subject: 'mesh.health.ingest', queue_group: '', metadata: {} },
      ],
    });
    // Describing mesh.in.> subscribes nothing there: a request to it finds no responders.
    await expect(client.request('mesh.in.order.created', '{}', { timeout: 1000 })).rejects.toThrow(/no responders/i);
  });

  it('answers $SRV.STATS.<name>.<id> with the numbers the stats callback gives, processing time in nanoseconds', async () => {
    let requests = 40;
    const started = new Date('2026-01-02T03:04:05.678Z');
    running.push(
      startDiscovery(nc, {
        ...ingestOptions('ingest-a', () => [
          { name: 'events', numRequests: requests, numErrors: 3, processingTimeMs: 12.5, lastError: 'JetStream timeout', data: { accepted: 37 } },
        ]),
        started,
      }),
    );
    running.push(
      startDiscovery(
        nc,
        ingestOptions('ingest-b', () => []),
      ),
    );
    await nc.flush();

    const replies = json(await ask(client, '$SRV.STATS.ingest.ingest-a'));
    expect(replies).toEqual([
      {
        type: 'io.nats.micro.v1.stats_response',
        name: 'ingest',
        id: 'ingest-a',
        version: '0.1.0',
        started: '2026-01-02T03:04:05.678Z',
        metadata: { http: 'http://127.0.0.1:8080' },
        endpoints: [
          {
            name: 'events',
            subject: 'mesh.in.>',
            queue_group: 'mesh-ingest',
            num_requests: 40,
            num_errors: 3,
            processing_time: 12_500_000,
            average_processing_time: 312_500,
            last_error: 'JetStream timeout',
            data: { accepted: 37 },
          },
          {
            name: 'health',
            subject: 'mesh.health.ingest',
            queue_group: '',
            num_requests: 0,
            num_errors: 0,
            processing_time: 0,
            average_processing_time: 0,
            last_error: '',
          },
        ],
      },
    ]);

    requests = 41;
    const [again] = json(await ask(client, '$SRV.STATS.ingest.ingest-a'));
    expect(again.endpoints[0].num_requests).toBe(41);
  });

  it('answers a failing stats callback with a service error header and keeps answering', async () => {
    const errors: Error[] = [];
    let fail = true;
    running.push(
      startDiscovery(nc, {
        ...ingestOptions('ingest-a', () => {
          if (fail) throw new Error('counters unavailable');
          return [];
        }),
        onError: (err) => errors.push(err),
      }),
    );
    await nc.flush();

    const [reply] = await ask(client, '$SRV.STATS.ingest');
    expect(reply.headers?.get('Nats-Service-Error')).toBe('counters unavailable');
    expect(reply.headers?.get('Nats-Service-Error-Code')).toBe('500');
    expect(errors.map((e) => e.message)).toEqual(['discovery: the stats callback of ingest failed: counters unavailable']);

    fail = false;
    const [ok] = json(await ask(client, '$SRV.STATS.ingest'));
    expect(ok.type).toBe('io.nats.micro.v1.stats_response');
  });

  it('stops answering after stop()', async () => {
    const discovery = startDiscovery(
      nc,
      ingestOptions('ingest-a', () => []),
    );
    await nc.flush();
    expect(await ask(client, '$SRV.PING.ingest')).toHaveLength(1);
    await discovery.stop();
    await expect(client.request('$SRV.PING.ingest', '', { timeout: 1000 })).rejects.toThrow(/no responders/i);
  });

  it('refuses a name, id, version or endpoint the protocol would not accept, naming it', () => {
    const base = ingestOptions('ingest-a', () => []);
    expect(() => startDiscovery(nc, { ...base, name: 'in.gest' })).toThrow(DiscoveryOptionError);
    expect(() => startDiscovery(nc, { ...base, name: 'in.gest' })).toThrow(
      "service discovery: name = \"in.gest\" is invalid: must be one or more letters, digits, '-' or '_'",
    );
    expect(() => startDiscovery(nc, { ...base, id: '' })).toThrow(/id = "" is invalid/);
    expect(() => startDiscovery(nc, { ...base, version: 'v1' })).toThrow(/version = "v1" is invalid: must be a semantic version/);
    expect(() =>
      startDiscovery(nc, {
        ...base,
        endpoints: [
          { name: 'a', subject: 'x' },
          { name: 'a', subject: 'y' },
        ],
      }),
    ).toThrow(/endpoints\[1\]\.name = "a" is invalid: must be a name no other endpoint has/);
    expect(() => startDiscovery(nc, { ...base, endpoints: [{ name: 'a', subject: 'POST /v1/events' }] })).toThrow(/endpoints\[0\]\.subject/);
  });
});
