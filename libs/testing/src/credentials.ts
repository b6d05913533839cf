/**
 * Connection options from an identity's env file (what `mesh nats-config`
 * writes), for tests that act as that identity with a client of their own.
 */
import { readFileSync } from 'node:fs';
import { nkeyAuthenticator, type ConnectionOptions } from '@nats-io/nats-core';

/** Read a `KEY=VALUE` env file (blank lines and `#` comments skipped). */
export function readEnvFile(path: string): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (line.trim() === '' || line.trimStart().startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) throw new Error(`${path}: not a KEY=VALUE line: ${JSON.stringify(line)}`);
    vars[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return vars;
}

/** The nkey and TLS options an env file names (NATS_NKEY_SEED_FILE, NATS_TLS_CA, NATS_TLS_CERT, NATS_TLS_KEY). */
export function credentialOptions(env: Readonly<Record<string, string>>): Partial<ConnectionOptions> {
  const options: Partial<ConnectionOptions> = {};
  if (env.NATS_NKEY_SEED_FILE) {
    options.authenticator = nkeyAuthenticator(new TextEncoder().encode(readFileSync(env.NATS_NKEY_SEED_FILE, 'utf8').trim()));
  }
  if (env.NATS_TLS_CA) {
    options.tls = { caFile: env.NATS_TLS_CA, ...(env.NATS_TLS_CERT ? { certFile: env.NATS_TLS_CERT, keyFile: env.NATS_TLS_KEY } : {}) };
  }
  return options;
}
