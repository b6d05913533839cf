/**
 * What a command runs with: one NATS connection, JetStream, and where to
 * write. Tests build one against their own nats-server and a MemoryOutput.
 *
 * The CLI connects without reconnecting (unlike the services' connectNats,
 * which waits for NATS forever): an operator wants a one-line error at once.
 */
import { jetstream, jetstreamManager, JetStreamApiCodes, JetStreamApiError, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { connectNats, NatsCredentialsError, NatsRefusedError, redactUrl } from '@mesh/messaging';
import type { GlobalOpts } from './argv';
import { CliError } from './errors';
import type { Output } from './output';

export interface CommandContext {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  out: Output;
  /** Print one JSON document instead of tables and notes. */
  json: boolean;
  /** For messages: where the commands are looking. */
  natsUrl: string;
}

const ConnectTimeoutMs = 5_000;

export async function commandContext(nc: NatsConnection, out: Output, opts: { json?: boolean; natsUrl?: string } = {}): Promise<CommandContext> {
  const natsUrl = opts.natsUrl ?? nc.getServer();
  let jsm: JetStreamManager;
  try {
    jsm = await jetstreamManager(nc);
  } catch (err) {
    throw new CliError(`the NATS server at ${natsUrl} has no JetStream (${(err as Error).message}); start nats-server with -js`);
  }
  return { nc, js: jetstream(nc), jsm, out, json: opts.json ?? false, natsUrl };
}

/**
 * Connect for one command with the given credentials; an unreachable
 * server, refused credentials or a TLS failure is a CliError with one line.
 */
export async function openContext(global: Pick<GlobalOpts, 'natsUrl' | 'json' | 'credentials' | 'labels'>, out: Output): Promise<CommandContext> {
  const natsUrl = redactUrl(global.natsUrl);
  let nc: NatsConnection;
  try {
    nc = await connectNats({
      url: global.natsUrl,
      name: 'mesh-cli',
      credentials: global.credentials,
      labels: global.labels,
      waitOnFirstConnect: false,
      reconnect: false,
      attemptTimeoutMs: ConnectTimeoutMs,
    });
  } catch (err) {
    if (err instanceof NatsCredentialsError || err instanceof NatsRefusedError) throw new CliError(err.message);
    throw new CliError(`cannot reach NATS at ${natsUrl}: ${redactUrl((err as Error).message)}`);
  }
  try {
    return await commandContext(nc, out, { json: global.json, natsUrl });
  } catch (err) {
    await nc.close();
    throw err;
  }
}

export function isNotFound(err: unknown, code: number): boolean {
  return err instanceof JetStreamApiError && err.code === code;
}

/** A stream the mesh should have; its absence means the mesh is not provisioned on this server. */
export async function requireStream(ctx: CommandContext, stream: string) {
  try {
    return await ctx.jsm.streams.info(stream);
  } catch (err) {
    if (isNotFound(err, JetStreamApiCodes.StreamNotFound)) {
      throw new CliError(`stream ${stream} not found at ${ctx.natsUrl}; the mesh is not provisioned there (every service provisions it when it starts)`);
    }
    throw err;
  }
}
