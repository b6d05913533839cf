/**
 * `mesh nats-config`: writes what a secured mesh needs, with no NATS
 * connection: nats-server.conf (one nkey user per identity, each service
 * limited to its own subjects), an env file per identity naming its
 * secret files, the nkey seeds, and with --tls a private CA, the server's
 * certificate and a client certificate per identity.
 *
 * Secrets are generated, never rotated by accident: a directory that holds
 * anything is refused unless --force says to replace it.
 */
import { chmodSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createUser } from '@nats-io/nkeys';
import { handlerServicePermissions, MeshServices, servicePermissions, type MeshService } from '@mesh/contracts';
import { CliError } from '../errors';
import type { Output } from '../output';
import { createCertificateAuthority, issueCertificate } from './certificates';
import { renderEnvFile } from './env-file';
import { renderServerConfig, type ServerUser } from './server-config';

export const Identities = ['admin', ...MeshServices] as const;
/** The admin, a service of the mesh, or a handler service (--handler-service). */
export type Identity = (typeof Identities)[number] | (string & {});

export interface NatsConfigOptions {
  /** Directory to write into (created if missing). */
  out: string;
  tls: boolean;
  partitions: number;
  /** Extra host names or IP addresses of the server certificate (127.0.0.1 and localhost are always in). */
  hosts: readonly string[];
  /** Replace what the directory holds (new secrets). */
  force: boolean;
  /** Handler services besides the processor, each an identity of its own limited to its own subjects. */
  handlerServices?: readonly string[];
}

export interface WrittenNatsConfig {
  dir: string;
  serverConfig: string;
  /** The env file of each identity. */
  envFiles: Record<string, string>;
  /** With --tls: the CA certificate every client and the server trust. */
  caFile?: string;
}

/** Hosts every server certificate is valid for: a local nats-server is reached by these. */
export const LocalHosts = ['127.0.0.1', 'localhost'] as const;

const SecretMode = 0o600;

function writeSecret(path: string, content: string): void {
  writeFileSync(path, content, { mode: SecretMode });
  // writeFileSync's mode applies only to a new file; --force may be replacing one.
  chmodSync(path, SecretMode);
}

function prepareDir(dir: string, force: boolean): void {
  if (existsSync(dir)) {
    const held = readdirSync(dir);
    if (held.length > 0 && !force) {
      const shown = held.slice(0, 5).join(', ') + (held.length > 5 ? ', …' : '');
      throw new CliError(
        `${dir} is not empty (${shown}); writing there would replace its secrets: give an empty or new directory, or --force to generate new ones`,
      );
    }
  }
  // Only its owner needs to read secrets; a directory we create is closed to others.
  mkdirSync(dir, { recursive: true, mode: 0o700 });
}

export function writeNatsConfig(o: NatsConfigOptions, out: Output): WrittenNatsConfig {
  const dir = resolve(o.out);
  prepareDir(dir, o.force);

  const identities: Identity[] = [...Identities, ...(o.handlerServices ?? []).filter((s) => !(Identities as readonly string[]).includes(s))];
  const permissionsOf = (identity: Identity) =>
    (MeshServices as readonly string[]).includes(identity)
      ? servicePermissions(identity as MeshService, o.partitions)
      : handlerServicePermissions(identity, o.partitions);
  const users: ServerUser[] = [];
  const env = {} as Record<string, Record<string, string>>;
  for (const identity of identities) {
    const kp = createUser();
    const seedFile = join(dir, `${identity}.nk`);
    writeSecret(seedFile, `${new TextDecoder().decode(kp.getSeed())}\n`);
    users.push({
      identity,
      nkey: kp.getPublicKey(),
      permissions: identity === 'admin' ? undefined : permissionsOf(identity),
    });
    env[identity] = { NATS_NKEY_SEED_FILE: seedFile };
  }

  let tls: { certFile: string; keyFile: string; caFile: string } | undefined;
  if (o.tls) {
    const tlsDir = join(dir, 'tls');
    mkdirSync(tlsDir, { recursive: true, mode: 0o700 });
    // The CA's key is not kept: new certificates mean running this again (--force).
    const ca = createCertificateAuthority('mesh NATS CA');
    const caFile = join(tlsDir, 'ca.pem');
    writeFileSync(caFile, ca.certPem);
    const server = issueCertificate(ca, { commonName: 'nats-server', usage: 'server', hosts: [...new Set([...LocalHosts, ...o.hosts])] });
    tls = { certFile: join(tlsDir, 'server-cert.pem'), keyFile: join(tlsDir, 'server-key.pem'), caFile };
    writeFileSync(tls.certFile, server.certPem);
    writeSecret(tls.keyFile, server.keyPem);
    for (const identity of identities) {
      const client = issueCertificate(ca, { commonName: identity, usage: 'client' });
      const certFile = join(tlsDir, `${identity}-cert.pem`);
      const keyFile = join(tlsDir, `${identity}-key.pem`);
      writeFileSync(certFile, client.certPem);
      writeSecret(keyFile, client.keyPem);
      Object.assign(env[identity], { NATS_TLS_CA: caFile, NATS_TLS_CERT: certFile, NATS_TLS_KEY: keyFile });
    }
  }

  const serverConfig = join(dir, 'nats-server.conf');
  writeFileSync(serverConfig, renderServerConfig({ users, tls, partitions: o.partitions }));
  const envFiles = {} as Record<string, string>;
  for (const identity of identities) {
    envFiles[identity] = join(dir, `${identity}.env`);
    // It names secret files only, but keep it as private as they are.
    writeSecret(envFiles[identity], renderEnvFile(env[identity]));
  }

  out.out(`wrote ${serverConfig}`);
  out.out(`  users: ${identities.join(', ')} (nkeys); services limited to their own subjects for ${o.partitions} partitions`);
  if (tls) out.out(`  TLS: CA ${tls.caFile}; clients need a certificate of it (one per identity in ${join(dir, 'tls')})`);
  out.out(`wrote ${identities.map((i) => `${i}.env`).join(', ')} in ${dir}`);
  const url = `${tls ? 'tls' : 'nats'}://127.0.0.1:4222`;
  out.err('next:');
  out.err(`  nats-server -c ${serverConfig} -js -sd <store dir>`);
  out.err(`  env $(cat ${envFiles.admin}) NATS_URL=${url} npm run mesh -- provision`);
  out.err(`  env $(cat ${envFiles.ingest}) NATS_URL=${url} MESH_PROVISION=false npx nx serve ingest   # and so on per service`);
  return { dir, serverConfig, envFiles, caFile: tls?.caFile };
}
