/**
 * The secured NATS cluster of deploy/ starts and does what it says, on this
 * host: deploy/compose-secrets.sh generates the identities with `mesh
 * nats-config --tls` and hands them out as the compose `secrets` job does;
 * three nats-server nodes run deploy/nats/nats-N.conf + cluster.conf as
 * they are, beside that output (../secure), with only the host-specific
 * values moved (ports onto free loopback ports, the store, route hosts onto
 * 127.0.0.1, /etc/nats/secure onto the temporary directory). Then:
 *   - the nodes form a cluster (an R3 stream gets 3 replicas);
 *   - admin and ingest connect over TLS with their nkey and client certificate;
 *   - ingest may not create a stream; a client without a certificate, and one
 *     without TLS, is refused.
 * And make-secrets.sh writes exactly the Secrets and keys the Kubernetes
 * manifests mount.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { parseAllDocuments } from 'yaml';
import { authOptions, credentialsFromEnv } from '@mesh/messaging';
import { eventually, NatsServerBinary, RepoRoot, waitForExit } from '@mesh/testing';

const Deploy = join(RepoRoot, 'deploy');
const MeshCli = `${process.execPath} ${join(RepoRoot, 'tools', 'mesh', 'dist', 'main.js')}`;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Replace `from` in `text`, failing when deploy/nats no longer holds it (the test would silently test less). */
function replaceIn(text: string, from: string | RegExp, to: string, file: string): string {
  const found = typeof from === 'string' ? text.includes(from) : from.test(text);
  if (!found) throw new Error(`${file} no longer contains ${String(from)}; update this test's host-specific rewrites`);
  return typeof from === 'string' ? text.split(from).join(to) : text.replace(from, to);
}

interface Node {
  n: number;
  client: number;
  cluster: number;
  http: number;
  dir: string;
  child?: ChildProcess;
  log: string;
}

describe('the secured NATS cluster of deploy/', () => {
  let root: string;
  const nodes: Node[] = [];
  const connections: NatsConnection[] = [];

  /** The env a container of `identity` gets in compose, with /etc/mesh/nats moved to its handed-out directory. */
  const identityEnv = (identity: string) => {
    const dir = join(root, 'out', identity);
    return {
      NATS_NKEY_SEED_FILE: join(dir, `${identity}.nk`),
      NATS_TLS_CA: join(dir, 'ca.pem'),
      NATS_TLS_CERT: join(dir, `${identity}-cert.pem`),
      NATS_TLS_KEY: join(dir, `${identity}-key.pem`),
    };
  };
  /** Services reply on their own inbox prefix (their permissions allow only that one). */
  const connectAs = async (identity: string, inboxPrefix?: string) => {
    const nc = await connect({
      servers: nodes.map((n) => `tls://127.0.0.1:${n.client}`),
      ...authOptions(credentialsFromEnv(identityEnv(identity))),
      ...(inboxPrefix ? { inboxPrefix } : {}),
      reconnect: false,
      timeout: 5_000,
    });
    connections.push(nc);
    return nc;
  };

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'mesh-deploy-secure-'));
    // 1. The compose `secrets` job, with its volumes as directories.
    execFileSync('sh', [join(Deploy, 'compose-secrets.sh')], {
      env: {
        PATH: process.env.PATH ?? '',
        SECRETS_DIR: join(root, 'gen'),
        OUT_DIR: join(root, 'out'),
        NATS_SECURE_DIR: join(root, 'out', 'nats'),
        NATS_HOSTS: 'nats-1,nats-2,nats-3',
        MESH_PARTITIONS: '16',
        MESH_CLI: MeshCli,
      },
      cwd: RepoRoot,
      stdio: 'pipe',
    });

    // 2. Each node: deploy/nats as /etc/nats/mesh, the nats volume as /etc/nats/secure beside it.
    for (const n of [1, 2, 3])
      nodes.push({ n, client: await freePort(), cluster: await freePort(), http: await freePort(), dir: join(root, `node-${n}`), log: '' });
    for (const node of nodes) {
      const mesh = join(node.dir, 'mesh');
      mkdirSync(mesh, { recursive: true });
      mkdirSync(join(node.dir, 'store'));
      symlinkSync(join(root, 'out', 'nats'), join(node.dir, 'secure'));
      for (const f of readdirSync(join(Deploy, 'nats')).filter((x) => x.endsWith('.conf'))) {
        let text = readFileSync(join(Deploy, 'nats', f), 'utf8');
        if (f === 'cluster.conf') {
          text = replaceIn(text, 'listen: 0.0.0.0:4222', `listen: 127.0.0.1:${node.client}`, f);
          text = replaceIn(text, 'http: 0.0.0.0:8222', `http: 127.0.0.1:${node.http}`, f);
          text = replaceIn(text, 'listen: 0.0.0.0:6222', `listen: 127.0.0.1:${node.cluster}`, f);
          text = replaceIn(text, 'store_dir: "/var/lib/nats-server"', `store_dir: "${join(node.dir, 'store')}"`, f);
          text = replaceIn(text, /max_file_store: \S+/, 'max_file_store: 1GB', f);
          text = replaceIn(text, /max_memory_store: \S+/, 'max_memory_store: 64MB', f);
          // Absolute paths of the secured files (route TLS), if cluster.conf names any.
          text = text.split('"/etc/nats/secure/').join(`"${join(node.dir, 'secure')}/`);
          for (const peer of nodes) text = replaceIn(text, `nats-route://nats-${peer.n}:6222`, `nats-route://127.0.0.1:${peer.cluster}`, f);
        }
        writeFileSync(join(mesh, f), text);
      }
    }

    // 3. Start them, each with its own nats-N.conf.
    for (const node of nodes) {
      node.child = spawn(NatsServerBinary, ['-c', join(node.dir, 'mesh', `nats-${node.n}.conf`)], { stdio: ['ignore', 'pipe', 'pipe'] });
      node.child.stdout!.on('data', (c: Buffer) => (node.log += c.toString()));
      node.child.stderr!.on('data', (c: Buffer) => (node.log += c.toString()));
    }
    // /healthz is 200 once the node is current with the JetStream meta group: the routes work.
    const healthy = await eventually(async () => {
      for (const node of nodes) {
        if (node.child!.exitCode !== null) throw new Error(`nats-${node.n} exited ${node.child!.exitCode}:\n${node.log}`);
        const r = await fetch(`http://127.0.0.1:${node.http}/healthz`).catch(() => undefined);
        if (!r?.ok) throw new Error(`nats-${node.n} not healthy yet:\n${node.log.slice(-2000)}`);
      }
      return true;
    }, 45_000);
    expect(healthy).toBe(true);
  }, 60_000);

  afterAll(async () => {
    await Promise.all(connections.map((nc) => nc.close().catch(() => undefined)));
    for (const node of nodes) {
      if (node.child && node.child.exitCode === null && node.child.signalCode === null) {
        node.child.kill('SIGKILL');
        await waitForExit(node.child);
      }
    }
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('takes clients over TLS with a verified certificate only (the generated authorization and tls are loaded)', () => {
    for (const node of nodes) {
      expect(node.log).toMatch(/TLS required for client connections/);
      expect(node.log).not.toMatch(/TLS route handshake error|authorization violation|tls: /i);
    }
  });

  it('forms the cluster: admin creates a stream with 3 replicas', async () => {
    const nc = await connectAs('admin');
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.add({ name: 'DEPLOY_CHECK', subjects: ['deploy.check'], num_replicas: 3 });
    expect(1 + (info.cluster?.replicas?.length ?? 0)).toBe(3);
    await jsm.streams.delete('DEPLOY_CHECK');
  });

  it('lets ingest connect with its own identity but not create a stream', async () => {
    const nc = await connectAs('ingest', '_INBOX_ingest');
    const jsm = await jetstreamManager(nc, { timeout: 3_000 });
    await expect(jsm.streams.add({ name: 'NOT_INGESTS', subjects: ['not.ingests'] })).rejects.toThrow(/permission/i);
  });

  it('refuses a client without a certificate, and one without TLS', async () => {
    const { NATS_NKEY_SEED_FILE, NATS_TLS_CA } = identityEnv('admin');
    await expect(
      connect({
        servers: `tls://127.0.0.1:${nodes[0].client}`,
        ...authOptions(credentialsFromEnv({ NATS_NKEY_SEED_FILE, NATS_TLS_CA })),
        reconnect: false,
        timeout: 5_000,
      }),
    ).rejects.toThrow();
    await expect(
      connect({
        servers: `nats://127.0.0.1:${nodes[0].client}`,
        ...authOptions(credentialsFromEnv({ NATS_NKEY_SEED_FILE })),
        reconnect: false,
        timeout: 5_000,
      }),
    ).rejects.toThrow();
  });
});

describe('deploy/k8s/make-secrets.sh --print', () => {
  type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

  it('writes every Secret and key the manifests mount, with the server config naming files inside its mount', () => {
    const out = execFileSync('bash', [join(Deploy, 'k8s', 'make-secrets.sh'), '--print'], {
      env: { ...process.env, MESH_CLI: MeshCli },
      stdio: ['ignore', 'pipe', 'pipe'],
    }).toString();
    const secrets = new Map<string, Record<string, string>>(
      parseAllDocuments(out)
        .map((d) => d.toJS() as Obj)
        .filter((o) => o?.kind === 'Secret')
        .map((o) => {
          expect(o.metadata.namespace).toBe('mesh');
          return [o.metadata.name, o.data];
        }),
    );
    const dir = join(Deploy, 'k8s');
    const workloads = readdirSync(dir)
      .filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml' && f !== 'nats-helm-values.yaml')
      .flatMap((f) => parseAllDocuments(readFileSync(join(dir, f), 'utf8'), { version: '1.1' }).map((d) => d.toJS() as Obj))
      .filter((o) => o?.spec?.template?.spec);
    let checked = 0;
    for (const w of workloads) {
      const spec = w.spec.template.spec;
      for (const v of spec.volumes ?? []) {
        if (!v.secret) continue;
        const data = secrets.get(v.secret.secretName);
        expect({ workload: w.metadata.name, secret: v.secret.secretName, made: data !== undefined }).toEqual({
          workload: w.metadata.name,
          secret: v.secret.secretName,
          made: true,
        });
        const mount = spec.containers[0].volumeMounts.find((m: Obj) => m.name === v.name);
        // Files the container is told about: items, or every key; env names a file of them.
        const files: string[] = v.secret.items
          ? v.secret.items.map((i: Obj) => posix.join(mount.mountPath, i.path))
          : Object.keys(data!).map((k) => posix.join(mount.mountPath, k));
        for (const i of v.secret.items ?? []) expect(Object.keys(data!)).toContain(i.key);
        for (const e of spec.containers[0].env ?? []) {
          if (/^NATS_.*(_FILE|_CA|_CERT|_KEY)$/.test(e.name))
            expect({ workload: w.metadata.name, variable: e.name, path: e.value, inSecret: files.includes(e.value) }).toMatchObject({ inSecret: true });
        }
        if (v.secret.secretName === 'nats-server-secure') {
          const conf = Buffer.from(data!['nats-server.conf'], 'base64').toString();
          for (const [, file] of conf.matchAll(/_file:\s*"([^"]+)"/g)) expect(files).toContain(file);
          expect(conf).toMatch(/verify:\s*true/);
        }
        checked += 1;
      }
    }
    // nats, provision and the four services.
    expect(checked).toBe(6);
  });
});
