import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { startNatsServer } from '@mesh/testing';
import { partitionOf } from '@mesh/contracts';

// The mesh promises that its partition function is nats-server's own, so a
// server-side `partition(n, ...)` mapping and the mesh put a key in the same place.
describe('partitionOf agrees with nats-server subject mapping', () => {
  it('puts 500 keys in the partition the server maps them to', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mesh-map-'));
    const conf = join(dir, 'map.conf');
    writeFileSync(conf, 'mappings = { "keys.*": "mapped.{{partition(16,1)}}.{{wildcard(1)}}" }\n');
    const server = await startNatsServer({ args: ['-c', conf] });
    const nc = await connect({ servers: server.url });
    try {
      const keys = Array.from({ length: 500 }, (_, i) => `customer-${i}_x${(i * 7919) % 1000}`);
      const seen = new Map<string, number>();
      const sub = nc.subscribe('mapped.>', { max: keys.length });
      const done = (async () => {
        for await (const m of sub) {
          const [, p, key] = m.subject.split('.');
          seen.set(key, Number(p));
        }
      })();
      for (const k of keys) nc.publish(`keys.${k}`);
      await done;
      expect(seen.size).toBe(keys.length);
      const disagreements = keys.filter((k) => seen.get(k) !== partitionOf(k, 16));
      expect(disagreements).toEqual([]);
    } finally {
      await nc.close();
      await server.stop();
    }
  });
});
