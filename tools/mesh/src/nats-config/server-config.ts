/**
 * nats-server.conf for the mesh's identities: one nkey user per identity,
 * the admin with every permission, each service with exactly its own
 * (servicePermissions), and, with TLS, verified client certificates.
 * Runs on nats-server 2.9: no accounts, no auth callout.
 */
import type { Grant, ServicePermissions } from '@mesh/contracts';

export interface ServerUser {
  /** `admin` or a service name; written as a comment beside the user. */
  identity: string;
  /** Public nkey of the user (`U...`). */
  nkey: string;
  /** Absent: every permission (the admin). */
  permissions?: ServicePermissions;
}

export interface ServerTls {
  certFile: string;
  keyFile: string;
  caFile: string;
}

export interface ServerConfigOptions {
  users: ServerUser[];
  tls?: ServerTls;
  partitions: number;
}

/** Subjects hold `$`, which the config format would take for a variable: every value is quoted. */
const quote = (text: string) => JSON.stringify(text);

function allowList(grants: readonly Grant[], indent: string): string[] {
  // The same subject may be needed for two reasons: list it once.
  const subjects = [...new Set(grants.map((g) => (g.queue ? `${g.subject} ${g.queue}` : g.subject)))];
  return [`${indent}allow: [`, ...subjects.map((s) => `${indent}  ${quote(s)}`), `${indent}]`];
}

function userBlock(u: ServerUser): string[] {
  if (!u.permissions) return [`    # ${u.identity}: every permission (provisioning, operations)`, `    { nkey: ${quote(u.nkey)} }`];
  const p = u.permissions;
  return [
    `    # ${u.identity}: its own subjects and JetStream API only`,
    '    {',
    `      nkey: ${quote(u.nkey)}`,
    '      permissions: {',
    '        publish: {',
    ...allowList(p.publish, '          '),
    '        }',
    '        subscribe: {',
    ...allowList(p.subscribe, '          '),
    '        }',
    ...(p.allowResponses ? ['        allow_responses: true'] : []),
    '      }',
    '    }',
  ];
}

export function renderServerConfig(o: ServerConfigOptions): string {
  const lines = [
    '# nats-server configuration of the event mesh, written by `mesh nats-config`.',
    `# One nkey user per identity; service permissions for ${o.partitions} partitions.`,
    '# Start: nats-server -c <this file> -js -sd <store dir> [-a <host>] [-p <port>]',
    '',
    'authorization {',
    '  users = [',
    ...o.users.flatMap(userBlock),
    '  ]',
    '}',
  ];
  if (o.tls) {
    lines.push(
      '',
      '# TLS for every client, and only clients with a certificate of the mesh CA.',
      'tls {',
      `  cert_file: ${quote(o.tls.certFile)}`,
      `  key_file: ${quote(o.tls.keyFile)}`,
      `  ca_file: ${quote(o.tls.caFile)}`,
      '  verify: true',
      '  timeout: 2',
      '}',
    );
  }
  return `${lines.join('\n')}\n`;
}
