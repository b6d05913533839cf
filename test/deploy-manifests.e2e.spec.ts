/**
 * The deployments in deploy/ run the mesh secured, read from the files as
 * compose and Kubernetes would read them:
 *   - no credential sits in a ConfigMap, an environment value or a URL
 *     (no password or token value, no nkey seed, no private key, no user info);
 *   - every service runs with MESH_PROVISION=false and finds its nkey seed,
 *     client certificate, key and CA at paths under a read-only mount of its
 *     own identity (compose: its own volume `:ro`; Kubernetes: its own
 *     Secret, readOnly, defaultMode 0400), and the provisioning job likewise
 *     as admin;
 *   - NATS takes its authorization and TLS from a Secret, never a ConfigMap;
 *   - every image has an exact version.
 * Static: nothing is started (see deploy-secure-cluster.e2e.spec.ts for that).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { parseAllDocuments, parseDocument } from 'yaml';
import { RepoRoot } from '@mesh/testing';

const Deploy = join(RepoRoot, 'deploy');
const Services = ['ingest', 'router', 'processor', 'aggregator'] as const;
const NatsFileVars = ['NATS_NKEY_SEED_FILE', 'NATS_TLS_CA', 'NATS_TLS_CERT', 'NATS_TLS_KEY'] as const;

/** What a credential looks like when it is written out instead of referenced by a file path. */
const SecretPatterns: { what: string; re: RegExp }[] = [
  { what: 'an nkey seed', re: /\bS[UAO][A-Z2-7]{50,}/ },
  { what: 'a private key', re: /-----BEGIN [A-Z ]*PRIVATE KEY-----/ },
  { what: 'a URL with user info', re: /\b[a-z][a-z0-9+.-]*:\/\/[^\s/@,"']+@/i },
  { what: 'a password or token setting', re: /\b(password|pass|token|auth_token)\s*[:=]\s*\S/i },
];

function secretsIn(text: string): string[] {
  return SecretPatterns.filter((p) => p.re.test(text)).map((p) => p.what);
}

/** A variable whose name says it holds a secret may only name a file. */
function isSecretValueVar(name: string): boolean {
  return /PASSWORD|TOKEN|SECRET|SEED|(^|_)KEY$|CREDS/.test(name) && !/_FILE$/.test(name) && !['NATS_TLS_KEY', 'NATS_CREDS'].includes(name);
}

/** An exact release: x.y.z, optionally with a suffix such as -alpine or -bookworm-slim. */
const ExactTag = /:\d+\.\d+\.\d+(-[a-z0-9.-]+)?$/;

/** True when `path` is `mount` or below it. */
const under = (path: string, mount: string) => path === mount || path.startsWith(mount.replace(/\/?$/, '/'));

// ---------------------------------------------------------------------------

describe('deploy/compose.yaml', () => {
  interface ComposeService {
    image?: string;
    build?: unknown;
    environment?: Record<string, string>;
    volumes?: string[];
    deploy?: { resources?: { limits?: { memory?: string } } };
    mem_limit?: string;
    ports?: string[];
  }
  const compose = parseDocument(readFileSync(join(Deploy, 'compose.yaml'), 'utf8'), { merge: true }).toJS() as {
    services: Record<string, ComposeService>;
  };
  const services = compose.services;

  /** The read-only mounts of a compose service: target -> source. */
  function readOnlyMounts(s: ComposeService): Map<string, string> {
    const out = new Map<string, string>();
    for (const v of s.volumes ?? []) {
      const [source, target, mode] = v.split(':');
      if (mode === 'ro') out.set(target, source);
    }
    return out;
  }

  function expectIdentityFromOwnVolume(name: string, identity: string) {
    const s = services[name];
    expect(s).toBeDefined();
    const env = s.environment ?? {};
    const mounts = readOnlyMounts(s);
    for (const v of NatsFileVars) {
      const path = env[v];
      expect({ service: name, variable: v, path }).toEqual({ service: name, variable: v, path: expect.stringMatching(/^\//) });
      const mount = [...mounts.keys()].find((m) => under(path, m));
      // The file is on a read-only mount, and that mount is this identity's own volume.
      expect({ service: name, variable: v, mountedFrom: mount && mounts.get(mount) }).toEqual({
        service: name,
        variable: v,
        mountedFrom: `secrets-${identity}`,
      });
    }
    // No other identity's volume, and not the volume holding every generated secret.
    const secretVolumes = (s.volumes ?? []).map((v) => v.split(':')[0]).filter((src) => /^secrets-|^mesh-secrets$/.test(src));
    expect({ service: name, secretVolumes }).toEqual({ service: name, secretVolumes: [`secrets-${identity}`] });
  }

  it.each(Services)('runs %s with MESH_PROVISION=false and its own identity files from a read-only volume', (name) => {
    expect(services[name].environment?.MESH_PROVISION).toBe('false');
    expectIdentityFromOwnVolume(name, name);
  });

  it('provisions with the admin identity from a read-only volume, after NATS and before the services', () => {
    expectIdentityFromOwnVolume('provision', 'admin');
    expect(services.provision.environment?.MESH_PROVISION).toBeUndefined();
  });

  it('gives NATS URLs with hosts only, over TLS', () => {
    for (const [name, s] of Object.entries(services)) {
      const url = s.environment?.NATS_URL;
      if (url === undefined) continue;
      for (const u of url.split(',')) expect({ service: name, url: u }).toEqual({ service: name, url: expect.stringMatching(/^tls:\/\/[a-z0-9.-]+:\d+$/) });
    }
  });

  it('holds no credential in any environment value', () => {
    for (const [name, s] of Object.entries(services)) {
      for (const [k, v] of Object.entries(s.environment ?? {})) {
        expect({ service: name, variable: k, found: secretsIn(`${k}=${v}`) }).toEqual({ service: name, variable: k, found: [] });
        expect({ service: name, variable: k, holdsSecretValue: isSecretValueVar(k) }).toEqual({ service: name, variable: k, holdsSecretValue: false });
      }
    }
  });

  it('mounts the NATS server files (no client seed or key) read-only beside deploy/nats on every node', () => {
    for (const n of [1, 2, 3]) {
      const mounts = readOnlyMounts(services[`nats-${n}`]);
      expect(mounts.get('/etc/nats/mesh')).toBe('./nats');
      // cluster.conf includes ../secure/nats-server.conf, relative to /etc/nats/mesh.
      expect(mounts.get(posix.dirname(posix.join('/etc/nats/mesh', '../secure/nats-server.conf')))).toBe('secrets-nats');
    }
  });

  it('encrypts the routes between the NATS nodes with verified certificates of the mesh CA', () => {
    const cluster = readFileSync(join(Deploy, 'nats', 'cluster.conf'), 'utf8');
    const block = /cluster \{[\s\S]*?\n\}/.exec(cluster)?.[0] ?? '';
    expect(block).toMatch(/^\s*tls \{[^}]*ca_file: "\/etc\/nats\/secure\/tls\/ca\.pem"[^}]*verify: true[^}]*\}/m);
  });

  it('pins every image it does not build to an exact version', () => {
    for (const [name, s] of Object.entries(services)) {
      if (s.build !== undefined) continue;
      expect({ service: name, image: s.image }).toEqual({ service: name, image: expect.stringMatching(ExactTag) });
    }
  });

  it('limits the memory of every mesh service, the router to 512M', () => {
    for (const name of Services)
      expect({ service: name, memory: services[name].deploy?.resources?.limits?.memory }).toEqual({
        service: name,
        memory: name === 'router' ? '512M' : '256M',
      });
  });

  it('publishes Jaeger and the collector on 127.0.0.1 only', () => {
    for (const name of ['jaeger', 'otel-collector']) {
      for (const p of services[name].ports ?? []) expect({ service: name, port: p }).toEqual({ service: name, port: expect.stringMatching(/^127\.0\.0\.1:/) });
    }
  });
});

// ---------------------------------------------------------------------------

describe('deploy/k8s', () => {
  type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  const dir = join(Deploy, 'k8s');
  const files = readdirSync(dir).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml' && f !== 'nats-helm-values.yaml');
  // YAML 1.1, as Kubernetes reads it: defaultMode 0400 is octal.
  const objects: Obj[] = files.flatMap((f) =>
    parseAllDocuments(readFileSync(join(dir, f), 'utf8'), { version: '1.1' })
      .map((d) => d.toJS() as Obj)
      .filter((o) => o && o.kind),
  );
  const kustomization = parseDocument(readFileSync(join(dir, 'kustomization.yaml'), 'utf8')).toJS() as {
    resources: string[];
    images?: { name: string; newTag?: string }[];
  };
  const find = (kind: string, name: string) => {
    const o = objects.find((x) => x.kind === kind && x.metadata?.name === name);
    if (!o) throw new Error(`no ${kind} ${name} in deploy/k8s (files: ${files.join(', ')})`);
    return o;
  };
  const podSpec = (o: Obj): Obj => o.spec.template.spec;

  it('applies every manifest file with kustomize', () => {
    expect(files.filter((f) => !kustomization.resources.includes(f))).toEqual([]);
  });

  it('holds no credential in any ConfigMap', () => {
    const maps = objects.filter((o) => o.kind === 'ConfigMap');
    expect(maps.length).toBeGreaterThan(0);
    for (const m of maps) {
      for (const [k, v] of Object.entries<string>(m.data ?? {})) {
        expect({ configMap: m.metadata.name, key: k, found: secretsIn(`${k}: ${v}`) }).toEqual({ configMap: m.metadata.name, key: k, found: [] });
        expect({ configMap: m.metadata.name, key: k, holdsSecretValue: isSecretValueVar(k) }).toEqual({
          configMap: m.metadata.name,
          key: k,
          holdsSecretValue: false,
        });
        // The NATS users live in the Secret nats-server-secure.
        expect({ configMap: m.metadata.name, key: k, users: /\bauthorization\s*\{|\bnkey\s*:/.test(v) }).toEqual({
          configMap: m.metadata.name,
          key: k,
          users: false,
        });
      }
    }
  });

  it('gives NATS_URL with a host only, over TLS', () => {
    expect(find('ConfigMap', 'mesh-config').data.NATS_URL).toMatch(/^tls:\/\/[a-z0-9.-]+:\d+$/);
  });

  it('holds no credential in any container environment value', () => {
    for (const o of objects.filter((x) => x.spec?.template?.spec)) {
      for (const c of podSpec(o).containers) {
        for (const e of c.env ?? []) {
          const found = e.value === undefined ? [] : secretsIn(`${e.name}=${e.value}`);
          expect({ workload: o.metadata.name, variable: e.name, found }).toEqual({ workload: o.metadata.name, variable: e.name, found: [] });
          if (e.value !== undefined)
            expect({ workload: o.metadata.name, variable: e.name, holdsSecretValue: isSecretValueVar(e.name) }).toEqual({
              workload: o.metadata.name,
              variable: e.name,
              holdsSecretValue: false,
            });
        }
      }
    }
  });

  /** The container's NATS_* file paths are below a readOnly mount of the Secret mesh-nats-<identity>, mode 0400. */
  function expectIdentityFromOwnSecret(o: Obj, identity: string) {
    const spec = podSpec(o);
    const c = spec.containers[0];
    const env = new Map<string, string>((c.env ?? []).map((e: Obj) => [e.name, e.value]));
    for (const v of NatsFileVars) {
      const path = env.get(v);
      const mount = (c.volumeMounts ?? []).find((m: Obj) => path !== undefined && under(path, m.mountPath));
      const volume = mount && spec.volumes.find((x: Obj) => x.name === mount.name);
      expect({
        workload: o.metadata.name,
        variable: v,
        readOnly: mount?.readOnly,
        secret: volume?.secret?.secretName,
        mode: volume?.secret?.defaultMode,
      }).toEqual({
        workload: o.metadata.name,
        variable: v,
        readOnly: true,
        secret: `mesh-nats-${identity}`,
        mode: 0o400,
      });
    }
    // Only its own identity: no other mesh-nats-* Secret, not the server's.
    const secrets = spec.volumes.filter((x: Obj) => x.secret).map((x: Obj) => x.secret.secretName);
    expect({ workload: o.metadata.name, secrets }).toEqual({ workload: o.metadata.name, secrets: [`mesh-nats-${identity}`] });
  }

  it.each(Services)('runs %s with MESH_PROVISION=false and its own identity from a read-only Secret', (name) => {
    const d = find('Deployment', name);
    const env = new Map<string, string>(podSpec(d).containers[0].env.map((e: Obj) => [e.name, e.value]));
    expect(env.get('MESH_PROVISION')).toBe('false');
    expectIdentityFromOwnSecret(d, name);
  });

  it.each(Services)("keeps the image's --max-semi-space-size=8 in NODE_OPTIONS of %s", (name) => {
    const env = new Map<string, string>(podSpec(find('Deployment', name)).containers[0].env.map((e: Obj) => [e.name, e.value]));
    expect(env.get('NODE_OPTIONS')).toContain('--max-semi-space-size=8');
  });

  it('gives the router at least 512Mi', () => {
    expect(podSpec(find('Deployment', 'router')).containers[0].resources.limits.memory).toBe('512Mi');
  });

  it('provisions in a Job with the admin identity from a read-only Secret', () => {
    const job = find('Job', 'provision');
    expect(podSpec(job).containers[0].args).toEqual(['tools/mesh/dist/main.js', 'provision']);
    expectIdentityFromOwnSecret(job, 'admin');
  });

  it('loads the NATS authorization and TLS from a Secret mounted where nats.conf includes it', () => {
    const sts = find('StatefulSet', 'nats');
    const spec = podSpec(sts);
    const c = spec.containers[0];
    const configPath: string = c.args[c.args.indexOf('--config') + 1];
    const conf: string = find('ConfigMap', 'nats-config').data[posix.basename(configPath)];
    const include = /^\s*include\s+(\S+)/m.exec(conf)?.[1];
    expect(include).toBeDefined();
    const included = posix.join(posix.dirname(configPath), include!);
    const mount = c.volumeMounts.find((m: Obj) => under(included, m.mountPath));
    const volume = spec.volumes.find((v: Obj) => v.name === mount?.name);
    expect({ readOnly: mount?.readOnly, secret: volume?.secret?.secretName, mode: volume?.secret?.defaultMode }).toEqual({
      readOnly: true,
      secret: 'nats-server-secure',
      mode: 0o400,
    });
    // The included file is one of the Secret's items, at that path.
    const items = volume.secret.items.map((i: Obj) => posix.join(mount.mountPath, i.path));
    expect(items).toContain(included);
    // Every TLS file nats.conf names is in that Secret too.
    for (const [, file] of conf.matchAll(/_file:\s*"([^"]+)"/g)) expect(items).toContain(file);
  });

  it('runs NATS as non-root with a read-only root filesystem and no capabilities', () => {
    const spec = podSpec(find('StatefulSet', 'nats'));
    expect(spec.securityContext).toMatchObject({ runAsNonRoot: true });
    expect(spec.containers[0].securityContext).toMatchObject({
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
    });
  });

  it('lets only the mesh pods reach the NATS client port', () => {
    const policy = find('NetworkPolicy', 'nats');
    expect(policy.spec.podSelector.matchLabels).toEqual(find('StatefulSet', 'nats').spec.selector.matchLabels);
    const client = policy.spec.ingress.filter((r: Obj) => r.ports.some((p: Obj) => p.port === 4222));
    expect(client).toHaveLength(1);
    const components = client[0].from[0].podSelector.matchExpressions.find((e: Obj) => e.key === 'app.kubernetes.io/component');
    expect([...components.values].sort()).toEqual([...Services, 'provision'].sort());
    // Every pod that connects carries one of those labels.
    for (const o of [...Services.map((s) => find('Deployment', s)), find('Job', 'provision')]) {
      expect(components.values).toContain(o.spec.template.metadata.labels['app.kubernetes.io/component']);
    }
  });

  it('pins every image to an exact version (the mesh image through kustomize images)', () => {
    const mapped = new Map((kustomization.images ?? []).map((i) => [i.name, i.newTag]));
    for (const o of objects.filter((x) => x.spec?.template?.spec)) {
      for (const c of podSpec(o).containers) {
        const image = mapped.has(c.image) ? `${c.image}:${mapped.get(c.image)}` : c.image;
        expect({ workload: o.metadata.name, image }).toEqual({ workload: o.metadata.name, image: expect.stringMatching(ExactTag) });
      }
    }
    const helm = parseDocument(readFileSync(join(dir, 'nats-helm-values.yaml'), 'utf8')).toJS() as { container: { image: { tag: string } } };
    expect(`nats:${helm.container.image.tag}`).toMatch(ExactTag);
  });
});

describe('deploy/Dockerfile', () => {
  it('builds on an exact Node.js release of a maintained LTS line (22 or 24)', () => {
    const base = /^ARG NODE_IMAGE=(\S+)$/m.exec(readFileSync(join(Deploy, 'Dockerfile'), 'utf8'))?.[1];
    expect(base).toMatch(ExactTag);
    expect(base).toMatch(/^node:(22|24)\.\d+\.\d+-/);
  });
});
