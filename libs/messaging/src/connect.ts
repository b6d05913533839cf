/**
 * One NATS connection per process, with its credentials.
 *
 * A service waits for its first server (saying every few seconds what it
 * waits for and where) and, once connected, reconnects forever: it outlives
 * NATS restarts and reports its state on /readyz instead of exiting. What
 * waiting cannot fix ends start-up at once with one line naming the cause
 * (NatsCredentialsError, NatsRefusedError): refused credentials, a server
 * certificate not signed by the configured CA, a client certificate the
 * server refuses, a missing creds file. Secrets never appear in what it
 * reports: URLs are shown with their user info masked.
 */
import { connect, errors, type NatsConnection } from '@nats-io/transport-node';
import { NatsRefusedError } from './errors';
import { authOptions, describeCredentials, EnvLabels, urlCredentials, type CredentialLabels, type NatsCredentials } from './nats-credentials';
import { redactUrl } from './redact';
import { patchRequestCancel } from './request-cancel-patch';
import { probeTls } from './tls-probe';

export interface ConnectOptions {
  /** Server URL(s), comma-separated. */
  url: string;
  /** Client name shown by the server (`<service>:<instance>`). */
  name: string;
  credentials: Partial<NatsCredentials>;
  /** How the credential settings are named in errors (env variables unless the CLI says otherwise). */
  labels: CredentialLabels;
  /** Prefix of this client's reply inboxes; a private one lets permissions scope replies per service. */
  inboxPrefix: string;
  /** Keep trying while no server answers (services); false fails at once (the CLI). */
  waitOnFirstConnect: boolean;
  /** Reconnect after a connection is lost (services); false for one-shot commands. */
  reconnect: boolean;
  /** Called every `waitingEveryMs` while no server answers. */
  onWaiting: (what: { url: string; reason: string; waitedMs: number }) => void;
  waitingEveryMs: number;
  /** Longest one connection attempt (TCP, TLS and the NATS handshake) may take. */
  attemptTimeoutMs: number;
}

const defaults: Omit<ConnectOptions, 'url' | 'name'> = {
  credentials: {},
  labels: EnvLabels,
  inboxPrefix: '_INBOX',
  waitOnFirstConnect: true,
  reconnect: true,
  onWaiting: () => undefined,
  waitingEveryMs: 5_000,
  attemptTimeoutMs: 4_000,
};

type Verdict = { fatal: string; cause: unknown } | { transient: string };

const TlsCodes = /CERT|SSL|TLS|OSSL|SIGNATURE|ISSUER/;

function firstServer(url: string): { host: string; port: number } {
  const first = url.split(',')[0].trim();
  const withScheme = /^[a-z]+:\/\//i.test(first) ? first : `nats://${first}`;
  const u = new URL(withScheme.replace(/^[a-z]+:/i, 'http:'));
  return { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 4222) };
}

async function judge(err: unknown, o: ConnectOptions, shownUrl: string): Promise<Verdict> {
  const c = o.credentials;
  const l = o.labels;
  const e = err as Error & { code?: string; cause?: Error & { code?: string } };
  if (e instanceof errors.AuthorizationError || e instanceof errors.UserAuthenticationExpiredError) {
    const given = describeCredentials(c);
    const inUrl = /:\/\/[^@/\s,]+@/.test(o.url) ? 'the credentials in the URL' : given;
    return { fatal: `NATS at ${shownUrl} refused the credentials (${given === 'no credentials' ? inUrl : given}): ${e.message}`, cause: err };
  }
  const code = e.code ?? e.cause?.code ?? '';
  if (code && TlsCodes.test(code)) {
    const ca = c.tlsCa ? `the CA in ${l.tlsCa} (${c.tlsCa})` : `the system's CAs (set ${l.tlsCa} to the CA that signed it)`;
    const what =
      code === 'ERR_TLS_CERT_ALTNAME_INVALID'
        ? `the server's certificate does not name this host: ${e.message}`
        : /KEY_VALUES_MISMATCH/.test(code)
          ? `${l.tlsKey} (${c.tlsKey}) is not the key of ${l.tlsCert} (${c.tlsCert})`
          : `the server's certificate is not trusted by ${ca}: ${e.message} (${code})`;
    return { fatal: `TLS with NATS at ${shownUrl} failed: ${what}`, cause: err };
  }
  const message = e.message ?? String(err);
  if (/does not support 'tls'|tls.*not available/i.test(message)) {
    return { fatal: `NATS at ${shownUrl} does not offer TLS, but ${l.tlsCa} or ${l.tlsCert} is set: ${message}`, cause: err };
  }
  if (/doesn't exist/.test(message)) return { fatal: `TLS file missing: ${message}`, cause: err };
  if (/unable to parse credentials|seed|nkey|jwt/i.test(message)) {
    return { fatal: `cannot authenticate to NATS at ${shownUrl} with ${describeCredentials(c)}: ${message}`, cause: err };
  }
  const tls = c.tlsCa || c.tlsCert;
  if (tls && (e instanceof errors.TimeoutError || /timeout|closed|reset/i.test(message))) {
    // The server may have refused the client certificate after the handshake; ask it.
    const { host, port } = firstServer(o.url);
    const probe = await probeTls(host, port, { caFile: c.tlsCa || undefined, certFile: c.tlsCert || undefined, keyFile: c.tlsKey || undefined });
    if (probe.ok === false) {
      const cert = c.tlsCert
        ? `the client certificate ${l.tlsCert} (${c.tlsCert})`
        : `a connection without a client certificate (set ${l.tlsCert} and ${l.tlsKey})`;
      return { fatal: `TLS with NATS at ${shownUrl} failed: the server refused ${cert}: ${probe.message} (${probe.code})`, cause: err };
    }
  }
  return { transient: code === 'ECONNREFUSED' || /refused/.test(message) ? 'connection refused' : message };
}

/** Errors from TLS libraries may span lines; what start-up reports is one. */
function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}

export async function connectNats(options: Partial<ConnectOptions> & Pick<ConnectOptions, 'url' | 'name'>): Promise<NatsConnection> {
  const o: ConnectOptions = { ...defaults, ...options };
  patchRequestCancel();
  const auth = authOptions(o.credentials, o.labels);
  const fromUrl = urlCredentials(o.url);
  const authenticator = auth.authenticator ?? fromUrl.authenticator;
  const shownUrl = redactUrl(o.url);
  const started = Date.now();
  let lastSaid = started;
  for (;;) {
    try {
      return await connect({
        servers: fromUrl.servers,
        name: o.name,
        ...(authenticator ? { authenticator } : {}),
        ...(auth.tls ? { tls: auth.tls } : {}),
        inboxPrefix: o.inboxPrefix,
        reconnect: o.reconnect,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 250,
        // The first connection is retried here, so failures can be judged.
        waitOnFirstConnect: false,
        timeout: o.attemptTimeoutMs,
        pingInterval: 10_000,
        // Capturing an async stack for every request and publish costs 20-30% of a
        // service's CPU (measured with --cpu-prof); errors still say what failed.
        noAsyncTraces: true,
      });
    } catch (err) {
      const verdict = await judge(err, o, shownUrl);
      if ('fatal' in verdict) throw new NatsRefusedError(oneLine(redactUrl(verdict.fatal)), { cause: verdict.cause });
      if (!o.waitOnFirstConnect) throw new NatsRefusedError(`cannot reach NATS at ${shownUrl}: ${redactUrl(verdict.transient)}`, { cause: err });
      const now = Date.now();
      if (now - lastSaid >= o.waitingEveryMs) {
        lastSaid = now;
        o.onWaiting({ url: shownUrl, reason: redactUrl(verdict.transient), waitedMs: now - started });
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}
