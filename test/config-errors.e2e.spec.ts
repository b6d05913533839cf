/**
 * A service that cannot work as configured stops at start-up and says why.
 * Each service's built `dist/main.js` is run as a process, as an operator
 * would: a bad configuration value exits 2 within seconds with a message on
 * stderr naming the variable, the value given and what would be accepted; a
 * partition count that disagrees with the provisioned mesh, or handler
 * modules that cannot work, exit 1 naming what is wrong.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import { Buckets, PartitionCountKey } from '@mesh/contracts';
import { runServiceToExit, type Exit } from './support/run-to-exit';
import { startNatsServer, startService, type NatsServer, type ServiceName } from '@mesh/testing';

const SERVICES: ServiceName[] = ['ingest', 'router', 'processor', 'aggregator'];
/** "Within a few seconds": a refused start-up does no work. */
const EXIT_WITHIN_MS = 8_000;

describe('a service refuses to start with a configuration that cannot work', () => {
  let server: NatsServer;
  let dir: string;
  const children = new Set<ChildProcess>();

  /** Run a service with `env` over a sane base environment; kill it if it is still running after `EXIT_WITHIN_MS`. */
  const run = (name: ServiceName, env: Record<string, string>): Promise<Exit> =>
    runServiceToExit(name, { NATS_URL: server.url, ...env }, EXIT_WITHIN_MS, children);

  function file(name: string, content: string): string {
    const path = join(dir, name);
    writeFileSync(path, content);
    return path;
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mesh-config-'));
    server = await startNatsServer();
    // Provision the mesh with the default 16 partitions, as a first start would
    // (the processor: it is ready on its own, the router waits for handlers).
    const processor = await startService('processor', { NATS_URL: server.url });
    expect(await processor.stop()).toBe(0);
  }, 60_000);

  afterAll(async () => {
    for (const child of children) child.kill('SIGKILL');
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  interface BadConfig {
    what: string;
    env: () => Record<string, string>;
    /** Lines expected on stderr after `<service>: invalid configuration:`. */
    says: () => (string | RegExp)[];
  }

  const badConfigs: BadConfig[] = [
    {
      what: 'MESH_PARTITIONS is not a number',
      env: () => ({ MESH_PARTITIONS: 'abc' }),
      says: () => ['  - MESH_PARTITIONS (mesh.partitions) = "abc" is invalid: must be a whole number from 1 to 1024'],
    },
    {
      what: 'HTTP_PORT is out of range',
      env: () => ({ HTTP_PORT: '70000' }),
      says: () => ['  - HTTP_PORT (http.port) = 70000 is invalid: must be a whole number from 0 to 65535'],
    },
    {
      what: 'NATS_URL is not a NATS URL',
      env: () => ({ NATS_URL: 'http://nope' }),
      says: () => ['  - NATS_URL (nats.url) = "http://nope" is invalid: must be one or more comma-separated NATS URLs such as "nats://127.0.0.1:4222"'],
    },
    {
      what: 'a MESH_ variable is misspelt',
      env: () => ({ MESH_PARTITONS: '3' }),
      says: () => [/^ {2}- unknown environment variable MESH_PARTITONS; known MESH_ variables: (MESH_[A-Z_]+, )*MESH_PARTITIONS(, MESH_[A-Z_]+)*$/],
    },
    {
      what: 'MESH_DUPLICATE_WINDOW is not a duration',
      env: () => ({ MESH_DUPLICATE_WINDOW: '5x' }),
      says: () => ['  - MESH_DUPLICATE_WINDOW (mesh.duplicateWindow) = "5x" is invalid: must be a duration such as "250ms", "30s", "10m" or "1h"'],
    },
    {
      what: 'MESH_CONFIG names a file that does not exist',
      env: () => ({ MESH_CONFIG: '/nonexistent.json' }),
      says: () => [
        `  - MESH_CONFIG = "/nonexistent.json" could not be read as a JSON config file: ENOENT: no such file or directory, open '/nonexistent.json'`,
      ],
    },
    {
      what: 'the MESH_CONFIG file is not JSON',
      env: () => ({ MESH_CONFIG: join(dir, 'broken.json') }),
      says: () => [new RegExp(`^ {2}- MESH_CONFIG = "${join(dir, 'broken.json')}" could not be read as a JSON config file: .*JSON`)],
    },
    {
      what: 'the MESH_CONFIG file has an unknown key',
      env: () => ({ MESH_CONFIG: join(dir, 'unknown-key.json') }),
      says: () => [/^ {2}- unknown key 'mesh\.partitons' in MESH_CONFIG file; known keys: ([a-zA-Z.]+, )*mesh\.partitions(, [a-zA-Z.]+)*$/],
    },
    {
      what: 'the MESH_CONFIG file has a bad value',
      env: () => ({ MESH_CONFIG: join(dir, 'bad-value.json') }),
      says: () => [/^ {2}- .*\(mesh\.leaseTtl\) = "soon" is invalid: must be a duration such as "250ms", "30s", "10m" or "1h"$/],
    },
    {
      what: 'several values are bad (all of them are listed)',
      env: () => ({ MESH_PARTITIONS: '0', MESH_SHUTDOWN_TIMEOUT: '-1s' }),
      says: () => [
        '  - MESH_PARTITIONS (mesh.partitions) = 0 is invalid: must be a whole number from 1 to 1024',
        '  - MESH_SHUTDOWN_TIMEOUT (shutdown.timeout) = "-1s" is invalid: must be a duration such as "250ms", "30s", "10m" or "1h"',
      ],
    },
  ];

  beforeAll(() => {
    file('broken.json', '{ "mesh": { "partitions": 16, }');
    file('unknown-key.json', JSON.stringify({ mesh: { partitions: 16, partitons: 3 } }));
    file('bad-value.json', JSON.stringify({ mesh: { leaseTtl: 'soon' } }));
  });

  it.each(badConfigs)(
    'stops every service with exit 2 and a message saying what is accepted when $what',
    async (bad) => {
      const exits = await Promise.all(SERVICES.map((name) => run(name, bad.env())));
      exits.forEach((exit, i) => {
        const name = SERVICES[i];
        expect({ service: name, code: exit.code }).toEqual({ service: name, code: 2 });
        expect(exit.ms).toBeLessThan(EXIT_WITHIN_MS);
        const lines = exit.stderr.trimEnd().split('\n');
        expect(lines[0]).toBe(`${name}: invalid configuration:`);
        const problems = lines.slice(1);
        const says = bad.says();
        expect(problems).toHaveLength(says.length);
        says.forEach((expected, n) => (typeof expected === 'string' ? expect(problems[n]).toBe(expected) : expect(problems[n]).toMatch(expected)));
        // Refused before doing anything: it never listened.
        expect(exit.stdout).not.toContain('http listening');
      });
    },
    60_000,
  );

  it('stops every service with exit 1 naming both counts when MESH_PARTITIONS differs from the provisioned mesh', async () => {
    const exits = await Promise.all(SERVICES.map((name) => run(name, { MESH_PARTITIONS: '8' })));
    exits.forEach((exit, i) => {
      expect({ service: SERVICES[i], code: exit.code }).toEqual({ service: SERVICES[i], code: 1 });
      expect(exit.ms).toBeLessThan(EXIT_WITHIN_MS);
      expect(exit.stderr).toContain(`${SERVICES[i]}: MESH_PARTITIONS is 8, but this mesh was provisioned with 16 partitions`);
      expect(exit.stderr).toContain('Start with MESH_PARTITIONS=16');
    });
    // And the recorded count is untouched.
    const nc = await connect({ servers: server.url });
    try {
      const checkpoints = await new Kvm(nc).open(Buckets.checkpoints);
      expect((await checkpoints.get(PartitionCountKey))?.string()).toBe('16');
    } finally {
      await nc.close();
    }
  }, 60_000);

  it('stops the processor with exit 1 naming the path when MESH_HANDLER_MODULES names a file that does not exist', async () => {
    const missing = join(dir, 'no-such-dir', 'refunds.handler.js');
    const exit = await run('processor', { MESH_HANDLER_MODULES: missing });
    expect(exit.code).toBe(1);
    expect(exit.ms).toBeLessThan(EXIT_WITHIN_MS);
    expect(exit.stderr).toContain(`processor: handler module '${missing}': cannot be loaded (MESH_HANDLER_MODULES): Cannot find module '${missing}'`);
  }, 30_000);

  it('stops the processor with exit 1 saying so when a handler module reuses the name of a built-in handler', async () => {
    const duplicate = file('orders-again.handler.js', "module.exports = { name: 'orders', types: ['order.created'], handle() { return []; } };\n");
    const exit = await run('processor', { MESH_HANDLER_MODULES: duplicate });
    expect(exit.code).toBe(1);
    expect(exit.ms).toBeLessThan(EXIT_WITHIN_MS);
    expect(exit.stderr).toContain("processor: two handlers are named 'orders'; each handler needs a unique name");
  }, 30_000);
  it('stops the aggregator with exit 1 naming the path when MESH_AGGREGATION_MODULES names a file that does not exist', async () => {
    const missing = join(dir, 'no-such-dir', 'hop.aggregation.js');
    const exit = await run('aggregator', { MESH_AGGREGATION_MODULES: missing });
    expect(exit.code).toBe(1);
    expect(exit.ms).toBeLessThan(EXIT_WITHIN_MS);
    expect(exit.stderr).toContain(`aggregator: aggregation module '${missing}': cannot be loaded (MESH_AGGREGATION_MODULES): Cannot find module '${missing}'`);
  }, 30_000);

  it('stops the aggregator with exit 1 saying why when an aggregation module is not a valid aggregation', async () => {
    const bad = file(
      'bad.aggregation.js',
      "module.exports = { name: 'bad', window: { kind: 'hopping', sizeMs: 1000, hopMs: 5000 }, init: () => ({}), add: (a) => a };\n",
    );
    const exit = await run('aggregator', { MESH_AGGREGATION_MODULES: bad });
    expect(exit.code).toBe(1);
    expect(exit.ms).toBeLessThan(EXIT_WITHIN_MS);
    expect(exit.stderr).toContain("aggregator: aggregation 'bad': window.hopMs must be positive and at most window.sizeMs");
  }, 30_000);

  it('stops the aggregator with exit 1 saying so when an aggregation module reuses the name of a built-in aggregation', async () => {
    const duplicate = file(
      'totals-again.aggregation.js',
      "module.exports = { name: 'totals', window: { kind: 'tumbling', sizeMs: 1000 }, init: () => ({}), add: (a) => a };\n",
    );
    const exit = await run('aggregator', { MESH_AGGREGATION_MODULES: duplicate });
    expect(exit.code).toBe(1);
    expect(exit.ms).toBeLessThan(EXIT_WITHIN_MS);
    expect(exit.stderr).toContain("aggregator: two aggregations are named 'totals'; each aggregation needs a unique name");
  }, 30_000);
});
