/**
 * The aggregator's new queries under its own least-privilege NATS identity
 * (as `mesh nats-config --tls` generates it): listing an aggregation's keys
 * and streaming a key's updates create ordered consumers on the results
 * bucket's stream, and the stream's teardown deletes its consumer; each is
 * allowed, and nothing the aggregator does is a permission violation.
 */
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { aggregateKvKey, Buckets, kvStream } from '@mesh/contracts';
import { credentialOptions, eventually, startSecureNats, startService, type SecureNats, type ServiceProcess } from '@mesh/testing';

describe("aggregate queries with the aggregator's own NATS identity", () => {
  let nats: SecureNats;
  let admin: NatsConnection;
  let aggregator: ServiceProcess | undefined;

  beforeAll(async () => {
    nats = await startSecureNats({ partitions: 4 });
    admin = await connect({ servers: nats.server.url, ...credentialOptions(nats.env('admin')) });
    aggregator = await startService('aggregator', {
      ...nats.env('aggregator'),
      NATS_URL: nats.server.url,
      MESH_PROVISION: 'false',
      MESH_PARTITIONS: '4',
      MESH_UPDATES_HEARTBEAT: '200ms',
    });
  }, 90_000);
  afterAll(async () => {
    await aggregator?.stop();
    await admin?.close();
    await nats?.stop();
  }, 60_000);

  it("lists keys, streams a key's updates and deletes the stream's consumer when the client goes away, with no permission violation", async () => {
    const results = await new Kvm(admin).open(Buckets.aggregates);
    const result = (count: number) =>
      JSON.stringify({
        name: 'totals',
        key: 'sec-1',
        windows: [{ start: '2026-05-01T00:00:00.000Z', end: '2026-05-01T00:01:00.000Z', closed: false, count, sum: count }],
      });
    await results.put(aggregateKvKey('totals', 'sec-1'), result(1));
    await results.put(aggregateKvKey('totals', 'sec-2'), result(1));

    const page = await fetch(`${aggregator!.url}/v1/aggregates/totals?limit=1`);
    expect(page.status).toBe(200);
    const first = (await page.json()) as { keys: string[]; next: string };
    expect(first.keys).toEqual(['sec-1']);
    const second = (await (await fetch(`${aggregator!.url}/v1/aggregates/totals?limit=1&cursor=${first.next}`)).json()) as { keys: string[]; next: null };
    expect(second).toEqual({ name: 'totals', keys: ['sec-2'], next: null });

    const jsm = await jetstreamManager(admin);
    const consumers = async () => (await jsm.streams.info(kvStream(Buckets.aggregates))).state.consumer_count;
    const before = await consumers();
    const abort = new AbortController();
    const res = await fetch(`${aggregator!.url}/v1/aggregates/totals/sec-1/events`, { signal: abort.signal });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    let text = '';
    const readUntil = async (pattern: RegExp) => {
      while (!pattern.test(text)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`stream ended before ${pattern}: ${text}`);
        text += new TextDecoder().decode(value);
      }
    };
    await readUntil(/"count":1/);
    await results.put(aggregateKvKey('totals', 'sec-1'), result(2));
    await readUntil(/"count":2/);
    await readUntil(/: heartbeat/);
    abort.abort();
    expect(await eventually(async () => (await consumers()) === before, 10_000, 100)).toBe(true);

    const violations = aggregator!
      .output()
      .split('\n')
      .filter((l) => /permission/i.test(l));
    expect(violations).toEqual([]);
    expect(
      nats.server
        .output()
        .split('\n')
        .filter((l) => /Violation/.test(l)),
    ).toEqual([]);
  }, 60_000);
});
