/**
 * The mesh secured as the README says to run it: `mesh nats-config --tls`
 * writes the server config and one identity per service, nats-server runs
 * with it (TLS, verified client certificates, nkey users with least
 * privilege), the admin provisions with `mesh provision`, and each service
 * runs with its own env file and MESH_PROVISION=false. Then:
 *   - the pipeline counts exactly, also across a SIGKILLed and restarted
 *     aggregator and a second processor taking partitions over;
 *   - `mesh replay --from beginning` run as the admin rebuilds every total
 *     unchanged (the stages read and ack the replay signal with their grants);
 *   - nothing any service did was refused (no permission violation in any
 *     service's output or in the server's log), so the permissions are enough;
 *   - a service with a client certificate of another CA, or trusting another
 *     CA than the server's, exits 1 within 10 s with one line naming TLS.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { serviceInboxPrefix, Subjects, type CloudEvent } from '@mesh/contracts';
import {
  credentialOptions,
  eventually,
  orderEvent,
  postEvents,
  readEnvFile,
  RepoRoot,
  startNatsServer,
  startService,
  type NatsServer,
  type ServiceName,
  type ServiceProcess,
  type Totals,
} from '@mesh/testing';
import { createCertificateAuthority, issueCertificate } from '../tools/mesh/src/nats-config/certificates';
import { expectExactTotalsOnceDrained } from './support/exact-totals';
import { consumingPartitions, waitUntilDrained } from './support/mesh-state';

const P = 16;
const MeshJs = join(RepoRoot, 'tools', 'mesh', 'dist', 'main.js');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Run a built entry point with only PATH and `env`, as an operator's shell would with an env file. */
function run(file: string, args: string[], env: Record<string, string>, timeoutMs = 60_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(process.execPath, [file, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
  });
}

function expectedTotals(events: readonly CloudEvent[]): Map<string, Totals> {
  const expected = new Map<string, Totals>();
  for (const e of events) {
    const t = expected.get(e.partitionkey!) ?? { count: 0, sum: 0 };
    t.count += 1;
    t.sum += (e.data as { amount: number }).amount;
    expected.set(e.partitionkey!, t);
  }
  return expected;
}

describe('the mesh secured with mesh nats-config --tls', () => {
  let dir: string;
  let server: NatsServer;
  /** Every service process started, for the permission check at the end. */
  const started: ServiceProcess[] = [];
  const live = new Map<ServiceName, ServiceProcess>();

  const envFile = (identity: 'admin' | ServiceName) => readEnvFile(join(dir, `${identity}.env`));
  const serviceEnv = (name: ServiceName) => ({ ...envFile(name), NATS_URL: server.url, MESH_PROVISION: 'false', MESH_LEASE_TTL: '2s', MESH_ACK_WAIT: '5s' });
  const start = async (name: ServiceName) => {
    const p = await startService(name, serviceEnv(name));
    started.push(p);
    return p;
  };
  const drained = () => waitUntilDrained(server.url, P, 60_000, credentialOptions(envFile('admin')));

  /** Post `events` in requests of 100 from 3 workers; `during(fraction)` resolves once that share is accepted. */
  function stream(events: readonly CloudEvent[]) {
    let sent = 0;
    const done = Promise.all(
      Array.from({ length: 3 }, async (_, w) => {
        for (let first = w * 100; first < events.length; first += 300) {
          const batch = events.slice(first, first + 100);
          await postEvents(live.get('ingest')!.url, batch, 'batch', 120_000);
          sent += batch.length;
          await new Promise((r) => setTimeout(r, 10));
        }
      }),
    );
    return { done, reached: (fraction: number) => eventually(async () => sent >= events.length * fraction, 120_000, 20) };
  }

  /** Every event a test checked the totals of: a replay from the beginning must give all of them back. */
  const checked: CloudEvent[] = [];
  async function expectExactTotals(events: readonly CloudEvent[], record = true) {
    if (record) checked.push(...events);
    const expected = expectedTotals(events);
    await expectExactTotalsOnceDrained(() => live.get('aggregator')!.url, expected, drained);
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mesh-secure-'));
    const generated = await run(MeshJs, ['nats-config', '--out', dir, '--tls', '--force'], {});
    if (generated.code !== 0) throw new Error(`mesh nats-config failed: ${generated.stderr}`);
    server = await startNatsServer({ args: ['-c', join(dir, 'nats-server.conf')] });
    const provisioned = await run(MeshJs, ['provision'], { ...envFile('admin'), NATS_URL: server.url });
    if (provisioned.code !== 0) throw new Error(`mesh provision as admin failed (${provisioned.code}): ${provisioned.stderr}`);
    // The processor first: it declares the handlers the router routes to.
    live.set('processor', await start('processor'));
    for (const name of ['ingest', 'router', 'aggregator'] as const) live.set(name, await start(name));
  }, 120_000);

  afterAll(async () => {
    await Promise.all(started.map((p) => p.stop()));
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('runs the pipeline end to end with exact totals', async () => {
    const events = Array.from({ length: 3_000 }, (_, n) => orderEvent(`plain-${n % 60}`, n, (n % 23) + 1));
    const s = stream(events);
    await s.done;
    await expectExactTotals(events);
  }, 180_000);

  it('counts exactly across an aggregator SIGKILLed and restarted mid-stream', async () => {
    const events = Array.from({ length: 4_000 }, (_, n) => orderEvent(`crash-${n % 60}`, n, (n % 31) + 1));
    const s = stream(events);
    await s.reached(0.3);
    await live.get('aggregator')!.kill();
    live.set('aggregator', await start('aggregator'));
    await s.done;
    await expectExactTotals(events);
  }, 240_000);

  it('counts exactly while a second processor joins and takes partitions over', async () => {
    const event = (n: number) => orderEvent(`scale-${n % 60}`, n, (n % 17) + 1);
    const sent: CloudEvent[] = [];
    const before = Array.from({ length: 2_000 }, (_, n) => event(n));
    await stream(before).done;
    sent.push(...before);
    // Events keep arriving while the newcomer starts and partitions move.
    let moved = false;
    const trickle = (async () => {
      for (let n = before.length; !moved; n += 10) {
        const batch = Array.from({ length: 10 }, (_, i) => event(n + i));
        await postEvents(live.get('ingest')!.url, batch, 'batch', 120_000);
        sent.push(...batch);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const second = await start('processor');
    const first = live.get('processor')!;
    // Both consume, and together all partitions: some moved to the newcomer.
    const spread = await eventually(
      async () => {
        const [a, b] = await Promise.all([consumingPartitions(first.url), consumingPartitions(second.url)]);
        return a.length > 0 && b.length > 0 && new Set([...a, ...b]).size === P && a.length + b.length === P;
      },
      60_000,
      200,
    );
    moved = true;
    await trickle;
    expect(spread).toBe(true);
    expect(sent.length).toBeGreaterThan(before.length);
    const after = Array.from({ length: 2_000 }, (_, i) => event(sent.length + i));
    await stream(after).done;
    sent.push(...after);
    await expectExactTotals(sent);
  }, 240_000);

  it('replays from the beginning as the admin, and every total comes back unchanged', async () => {
    const replayed = await run(MeshJs, ['replay', '--from', 'beginning', '--yes'], { ...envFile('admin'), NATS_URL: server.url }, 120_000);
    // On a failure, what it printed and for how long says where it stood.
    const failed = replayed.code === 0 ? {} : { stdout: replayed.stdout, ms: replayed.ms };
    expect({ code: replayed.code, stderr: replayed.stderr, ...failed }).toEqual({ code: 0, stderr: '' });
    expect(replayed.stdout).toContain('resumed: epoch 1');
    await expectExactTotals(checked, false);
  }, 240_000);

  it('was refused nothing: no permission violation in any service output or the server log', async () => {
    // The server logs each refusal ("Publish Violation", "Subscription Violation"); services log "nats permission violation".
    const log = server.output();
    expect(log).toMatch(/Server is ready/);
    expect(log.split('\n').filter((l) => /Violation/.test(l))).toEqual([]);
    for (const p of started)
      expect({
        service: p.name,
        violations: p
          .output()
          .split('\n')
          .filter((l) => /permission violation/i.test(l)),
      }).toEqual({ service: p.name, violations: [] });
    // The server's log would show one: the processor's identity publishing to ingest's subjects.
    const nc = await connect({ servers: server.url, inboxPrefix: serviceInboxPrefix('processor'), ...credentialOptions(envFile('processor')) });
    try {
      await expect(jetstream(nc).publish(Subjects.ingest(0, 'order.created'), '[]')).rejects.toThrow(/Permissions Violation/);
    } finally {
      await nc.close();
    }
    expect(await eventually(async () => /Publish Violation/.test(server.output().slice(log.length)), 5_000, 50)).toBe(true);
  });

  describe('a service with the wrong TLS material exits at once', () => {
    let other: string;

    beforeAll(() => {
      other = mkdtempSync(join(tmpdir(), 'mesh-other-ca-'));
      const ca = createCertificateAuthority('another CA');
      const client = issueCertificate(ca, { commonName: 'router', usage: 'client' });
      writeFileSync(join(other, 'ca.pem'), ca.certPem);
      writeFileSync(join(other, 'router-cert.pem'), client.certPem);
      writeFileSync(join(other, 'router-key.pem'), client.keyPem, { mode: 0o600 });
    });
    afterAll(() => rmSync(other, { recursive: true, force: true }));

    const expectOneLineTlsExit = (r: Run) => {
      const lines = r.stderr.trim().split('\n');
      expect({ code: r.code, inTime: r.ms < 10_000 }).toEqual({ code: 1, inTime: true });
      expect(lines[lines.length - 1]).toMatch(/TLS|certificate/i);
      expect(r.stderr).not.toMatch(/^\s+at /m);
    };

    it('exits 1 within 10 s, naming TLS, when its client certificate comes from another CA', async () => {
      const env = {
        ...serviceEnv('router'),
        NATS_TLS_CERT: join(other, 'router-cert.pem'),
        NATS_TLS_KEY: join(other, 'router-key.pem'),
        HTTP_PORT: '0',
        HTTP_HOST: '127.0.0.1',
      };
      expectOneLineTlsExit(await run(join(RepoRoot, 'services', 'router', 'dist', 'main.js'), [], env, 20_000));
    }, 30_000);

    it("exits 1 within 10 s, naming TLS, when it trusts another CA than the server's", async () => {
      const env = { ...serviceEnv('router'), NATS_TLS_CA: join(other, 'ca.pem'), HTTP_PORT: '0', HTTP_HOST: '127.0.0.1' };
      expectOneLineTlsExit(await run(join(RepoRoot, 'services', 'router', 'dist', 'main.js'), [], env, 20_000));
    }, 30_000);
  });
});
