/**
 * What a command runs with: one NATS connection, JetStream, and where to
 * write. Tests build one against their own nats-server and a MemoryOutput.
 *
 * The CLI connects without reconnecting (unlike the services' connectNats,
 * which waits for NATS forever): an operator wants a one-line error at once.
 */
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { connectNats, NatsCredentialsError, NatsRefusedError, redactUrl } from '@mesh/messaging';
import type { MeshContext } from '@mesh/operations';
import type { GlobalOpts } from './argv';
import { CliError } from './errors';
import type { Output } from './output';

export interface CommandContext extends MeshContext {
  out: Output;
  /** Print one JSON document instead of tables and notes. */
  json: boolean;
}

export { isNotFound, requireStream } from '@mesh/operations';

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
