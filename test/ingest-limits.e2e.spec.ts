/**
 * Ingest's admission control with real processes: token-bucket rate limits
 * per client address (keys off) and per API key answer 429 with Retry-After
 * and the RateLimit header fields, refusing the whole request; the bound on
 * bytes in flight answers 503 at once, from the content-length before the
 * body is read, or while a chunked body arrives. Nothing refused is stored.
 */
import { request, type IncomingHttpHeaders } from 'node:http';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Streams, type CloudEvent } from '@mesh/contracts';
import { encodeRequest, orderEvent, startNatsServer, startService, stopAll, type NatsServer, type ServiceProcess } from '@mesh/testing';
import { bearer, createKey } from './support/api-keys';

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: { error?: string; accepted?: number };
}

let seq = 0;
const events = (n: number, key = 'limits'): CloudEvent[] => Array.from({ length: n }, () => orderEvent(key, seq++, 1));

async function post(url: string, evs: CloudEvent[], headers: Record<string, string> = {}): Promise<Answer> {
  const { contentType, body } = encodeRequest(evs, 'batch');
  const res = await fetch(`${url}/v1/events`, { method: 'POST', headers: { 'content-type': contentType, ...headers }, body });
  return { status: res.status, headers: Object.fromEntries(res.headers), body: (await res.json()) as Answer['body'] };
}

/** A POST whose body is written by the test: `declared` sets content-length (else chunked). */
function openPost(port: number, declared?: number) {
  let settle!: (a: Answer) => void;
  let fail!: (e: Error) => void;
  const answer = new Promise<Answer>((resolve, reject) => ((settle = resolve), (fail = reject)));
  const req = request(
    {
      host: '127.0.0.1',
      port,
      method: 'POST',
      path: '/v1/events',
      headers: { 'content-type': 'application/cloudevents-batch+json', ...(declared !== undefined ? { 'content-length': String(declared) } : {}) },
    },
    (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => settle({ status: res.statusCode!, headers: res.headers, body: JSON.parse(text) }));
    },
  );
  req.on('error', fail);
  return { req, answer };
}

/** A batch body of exactly `size` bytes (JSON allows trailing white space). */
function bodyOf(size: number, n = 3): string {
  const json = JSON.stringify(events(n, 'held'));
  if (json.length > size) throw new Error(`a body of ${n} events takes ${json.length} bytes, more than ${size}`);
  return json + ' '.repeat(size - json.length);
}

describe('ingest admission control', () => {
  let server: NatsServer;
  let nc: NatsConnection;
  const procs: ServiceProcess[] = [];
  const start = async (env: Record<string, string>) => {
    const p = await startService('ingest', { NATS_URL: server.url, MESH_PARTITIONS: '4', ...env });
    procs.push(p);
    return p;
  };
  const storedMessages = async () => (await (await jetstreamManager(nc)).streams.info(Streams.ingest)).state.messages;

  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connect({ servers: server.url });
  }, 30_000);
  afterAll(async () => {
    await nc?.close();
    await stopAll(procs);
    await server?.stop();
  }, 30_000);

  it('limits events per second per client address with 429, Retry-After and RateLimit fields, storing nothing refused', async () => {
    const ingest = await start({ MESH_RATE_LIMIT_EVENTS: '100' });
    const first = await post(ingest.url, events(60));
    expect(first.status).toBe(202);
    expect(first.headers['ratelimit-limit']).toBe('100');
    expect(Number(first.headers['ratelimit-remaining'])).toBeGreaterThanOrEqual(40);
    expect(Number(first.headers['ratelimit-remaining'])).toBeLessThan(60);

    const before = await storedMessages();
    const refused = await post(ingest.url, events(60));
    expect(refused.status).toBe(429);
    expect(refused.body.error).toMatch(/rate limit of 100 events\/s reached.*nothing was stored/);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(refused.headers['ratelimit-limit']).toBe('100');
    expect(Number(refused.headers['ratelimit-remaining'])).toBeLessThan(60);
    expect(Number(refused.headers['ratelimit-reset'])).toBeGreaterThanOrEqual(1);
    expect(refused.headers['ratelimit-policy']).toBe('100;w=1');
    expect(await storedMessages()).toBe(before);

    // A request larger than the burst can never pass: it is told to split.
    const tooBig = await post(ingest.url, events(150));
    expect(tooBig.status).toBe(429);
    expect(tooBig.body.error).toMatch(/holds 150 events, more than the 100 a client may send at once/);

    await new Promise((r) => setTimeout(r, Number(refused.headers['retry-after']) * 1000));
    expect((await post(ingest.url, events(60))).status).toBe(202);
  }, 60_000);

  it('limits each API key on its own', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'mesh-keys-')), 'keys.json');
    const a = await createKey(file, 'a', 'ingest');
    const b = await createKey(file, 'b', 'ingest');
    const ingest = await start({ MESH_API_KEYS_FILE: file, MESH_RATE_LIMIT_EVENTS: '50', MESH_RATE_LIMIT_BURST: '10s' });
    // Burst 10 s: 500 events at once.
    expect((await post(ingest.url, events(500), bearer(a))).status).toBe(202);
    const refused = await post(ingest.url, events(20), bearer(a));
    expect(refused.status).toBe(429);
    expect(refused.headers['ratelimit-policy']).toBe('500;w=10');
    expect((await post(ingest.url, events(500), bearer(b))).status).toBe(202);
  }, 60_000);

  it('limits bytes per second, refusing from the content-length before reading the body', async () => {
    const ingest = await start({ MESH_RATE_LIMIT_BYTES: '4000' });
    const big = await post(ingest.url, events(40));
    expect(big.status).toBe(429);
    expect(big.body.error).toMatch(/more than the 4000 a client may send at once \(rate limit 4000 bytes\/s\)/);
    // About 3,000 bytes, then about 1,800: more than what is left plus what refills meanwhile.
    const first = events(20);
    expect(JSON.stringify(first).length).toBeGreaterThan(2800);
    expect((await post(ingest.url, first)).status).toBe(202);
    const rest = await post(ingest.url, events(12));
    expect(rest.status).toBe(429);
    expect(rest.body.error).toMatch(/rate limit of 4000 bytes\/s reached/);
    expect(rest.headers['ratelimit-limit']).toBe('4000');
  }, 60_000);

  it('answers 503 at once past the bytes held in flight, from the content-length or as chunks arrive', async () => {
    const ingest = await start({ MESH_MAX_IN_FLIGHT_BYTES: '4000' });
    // A client that declared 3,000 bytes and sent 1,000 holds 3,000 of the 4,000.
    const held = openPost(ingest.port, 3000);
    const heldBody = bodyOf(3000);
    held.req.write(heldBody.slice(0, 1000));
    await new Promise((r) => setTimeout(r, 300));

    const started = Date.now();
    // fetch sends a content-length: refused before its body is read.
    const over = await post(ingest.url, events(8, 'other'));
    expect(over.status).toBe(503);
    expect(over.body.error).toMatch(/bound of 4000 bytes \(MESH_MAX_IN_FLIGHT_BYTES\) in flight; nothing was stored/);
    expect(over.headers['retry-after']).toBe('1');
    expect(Date.now() - started).toBeLessThan(5_000);

    // Chunked: no content-length, so bytes are counted as they arrive.
    const chunked = openPost(ingest.port);
    chunked.req.write('[' + ' '.repeat(599));
    chunked.req.write(' '.repeat(600));
    const refused = await chunked.answer;
    expect(refused.status).toBe(503);
    expect(refused.body.error).toMatch(/MESH_MAX_IN_FLIGHT_BYTES/);
    chunked.req.destroy();

    held.req.end(heldBody.slice(1000));
    const accepted = await held.answer;
    expect(accepted.status).toBe(202);
    expect(accepted.body.accepted).toBe(3);
    // Released: room again.
    expect((await post(ingest.url, events(8, 'other'))).status).toBe(202);
  }, 60_000);
});
