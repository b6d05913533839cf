/**
 * How a process proves who it is to NATS: user and password, a token, an
 * nkey seed, a `.creds` file (JWT + seed), and TLS (a CA to trust the
 * server, a client certificate and key for mutual TLS). Secrets may come
 * from files so a Kubernetes Secret can be mounted instead of put in env.
 *
 * Everything is read and checked before the first connection attempt, so a
 * missing or unreadable file is one clear error, not a reconnect loop.
 */
import { readFileSync } from 'node:fs';
import {
  credsAuthenticator,
  nkeyAuthenticator,
  tokenAuthenticator,
  usernamePasswordAuthenticator,
  type Authenticator,
  type ConnectionOptions,
} from '@nats-io/nats-core';
import { NatsCredentialsError } from './errors';

/** Credential settings as configured; an empty string means "not set". */
export interface NatsCredentials {
  user: string;
  password: string;
  passwordFile: string;
  token: string;
  tokenFile: string;
  /** File holding an nkey user seed (`SU...`). */
  nkeySeedFile: string;
  /** A `.creds` file: a user JWT and its nkey seed. */
  creds: string;
  /** CA certificate(s) that sign the server's certificate; setting it turns TLS on. */
  tlsCa: string;
  /** Client certificate and key for mutual TLS; both or neither. */
  tlsCert: string;
  tlsKey: string;
}

/** How each setting is named to the user (env variables by default, CLI flags in the CLI). */
export type CredentialLabels = Record<keyof NatsCredentials, string>;

export const EnvLabels: CredentialLabels = {
  user: 'NATS_USER',
  password: 'NATS_PASSWORD',
  passwordFile: 'NATS_PASSWORD_FILE',
  token: 'NATS_TOKEN',
  tokenFile: 'NATS_TOKEN_FILE',
  nkeySeedFile: 'NATS_NKEY_SEED_FILE',
  creds: 'NATS_CREDS',
  tlsCa: 'NATS_TLS_CA',
  tlsCert: 'NATS_TLS_CERT',
  tlsKey: 'NATS_TLS_KEY',
};

/** The env variable of each credential setting: one place for services, `npm start`, the CLI and the bench. */
export function credentialsFromEnv(env: Readonly<Record<string, string | undefined>>): NatsCredentials {
  const out = {} as NatsCredentials;
  for (const [key, name] of Object.entries(EnvLabels) as [keyof NatsCredentials, string][]) out[key] = env[name]?.trim() ?? '';
  return out;
}

/** The connect options that carry the credentials (authenticator and TLS). */
export type AuthOptions = Pick<ConnectionOptions, 'authenticator' | 'tls'>;

/** Which way of authenticating is configured, for log lines: never the secret. */
export function describeCredentials(c: Partial<NatsCredentials>): string {
  const ways: string[] = [];
  if (c.creds) ways.push(`creds file ${c.creds}`);
  if (c.nkeySeedFile) ways.push(`nkey seed file ${c.nkeySeedFile}`);
  if (c.user) ways.push(`user '${c.user}'`);
  if (c.token || c.tokenFile) ways.push('a token');
  if (c.tlsCert) ways.push(`client certificate ${c.tlsCert}`);
  return ways.length > 0 ? ways.join(' and ') : 'no credentials';
}

function readSecret(path: string, label: string, what: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new NatsCredentialsError(`${label}: cannot read the ${what} file ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  const value = text.trim();
  if (value === '') throw new NatsCredentialsError(`${label}: the ${what} file ${path} is empty`);
  return value;
}

function checkReadable(path: string, label: string, what: string): void {
  readSecret(path, label, what);
}

/**
 * Turn credential settings into connect options, reading every file now.
 * Throws NatsCredentialsError naming the setting when one is missing,
 * unreadable, or given together with one it excludes.
 */
export function authOptions(c: Partial<NatsCredentials>, labels: CredentialLabels = EnvLabels): AuthOptions {
  const both = (a: keyof NatsCredentials, b: keyof NatsCredentials) => {
    if (c[a] && c[b]) throw new NatsCredentialsError(`${labels[a]} and ${labels[b]} are both set; give one of them`);
  };
  both('password', 'passwordFile');
  both('token', 'tokenFile');
  const password = c.passwordFile ? readSecret(c.passwordFile, labels.passwordFile, 'password') : c.password;
  const token = c.tokenFile ? readSecret(c.tokenFile, labels.tokenFile, 'token') : c.token;
  if (password && !c.user) throw new NatsCredentialsError(`${labels.password} is set without ${labels.user}; give the user name too`);
  if (c.user && !password) throw new NatsCredentialsError(`${labels.user} is set without a password; set ${labels.password} or ${labels.passwordFile}`);

  const authenticators: Authenticator[] = [];
  if (c.user && password) authenticators.push(usernamePasswordAuthenticator(c.user, password));
  if (token) authenticators.push(tokenAuthenticator(token));
  if (c.nkeySeedFile) {
    const seed = readSecret(c.nkeySeedFile, labels.nkeySeedFile, 'nkey seed');
    if (!/^SU[A-Z2-7]{56}$/.test(seed)) {
      throw new NatsCredentialsError(`${labels.nkeySeedFile}: ${c.nkeySeedFile} does not hold an nkey user seed (one line starting with SU, 58 characters)`);
    }
    authenticators.push(nkeyAuthenticator(new TextEncoder().encode(seed)));
  }
  if (c.creds) {
    // The client's parser wants the file as written, final newline included.
    readSecret(c.creds, labels.creds, 'creds');
    const creds = readFileSync(c.creds, 'utf8');
    if (!/-----BEGIN NATS USER JWT-----/.test(creds) || !/-----BEGIN USER NKEY SEED-----/.test(creds)) {
      throw new NatsCredentialsError(`${labels.creds}: ${c.creds} is not a NATS .creds file (it needs a USER JWT and a USER NKEY SEED block)`);
    }
    authenticators.push(credsAuthenticator(new TextEncoder().encode(creds)));
  }
  if (authenticators.length > 1) {
    throw new NatsCredentialsError(`more than one way to authenticate is set (${describeCredentials(c)}); give one`);
  }

  if ((c.tlsCert && !c.tlsKey) || (!c.tlsCert && c.tlsKey)) {
    throw new NatsCredentialsError(`${labels.tlsCert} and ${labels.tlsKey} go together (a client certificate and its key); set both or neither`);
  }
  let tls: AuthOptions['tls'];
  if (c.tlsCa || c.tlsCert) {
    tls = {};
    if (c.tlsCa) {
      checkReadable(c.tlsCa, labels.tlsCa, 'CA certificate');
      tls.caFile = c.tlsCa;
    }
    if (c.tlsCert && c.tlsKey) {
      checkReadable(c.tlsCert, labels.tlsCert, 'client certificate');
      checkReadable(c.tlsKey, labels.tlsKey, 'client key');
      tls.certFile = c.tlsCert;
      tls.keyFile = c.tlsKey;
    }
  }
  return { authenticator: authenticators[0], tls };
}

/**
 * Credentials written into the URL (`nats://user:pass@host`, `nats://token@host`),
 * the old way to pass them: taken out of the server list (so the client never
 * repeats them) and used when nothing else is configured.
 */
export function urlCredentials(url: string): { servers: string[]; authenticator?: Authenticator } {
  let authenticator: Authenticator | undefined;
  const servers = url.split(',').map((raw) => {
    const s = raw.trim();
    const m = /^([a-z][a-z0-9+.-]*:\/\/)([^@/\s]+)@(.*)$/i.exec(s);
    if (!m) return s;
    const [, scheme, info, rest] = m;
    if (!authenticator) {
      const colon = info.indexOf(':');
      authenticator =
        colon >= 0
          ? usernamePasswordAuthenticator(decodeURIComponent(info.slice(0, colon)), decodeURIComponent(info.slice(colon + 1)))
          : tokenAuthenticator(decodeURIComponent(info));
    }
    return `${scheme}${rest}`;
  });
  return { servers, authenticator };
}
