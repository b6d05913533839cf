/**
 * What an operation on a running mesh needs: one NATS connection, JetStream
 * and where it is (for messages). The CLI's command context and the
 * console's connection both are one.
 */
import { JetStreamApiCodes, JetStreamApiError, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { OperationError } from './errors';

export interface MeshContext {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  /** For messages: where the operations are looking (without credentials). */
  natsUrl: string;
}

export function isNotFound(err: unknown, code: number): boolean {
  return err instanceof JetStreamApiError && err.code === code;
}

/** A stream the mesh should have; its absence means the mesh is not provisioned on this server. */
export async function requireStream(ctx: MeshContext, stream: string) {
  try {
    return await ctx.jsm.streams.info(stream);
  } catch (err) {
    if (isNotFound(err, JetStreamApiCodes.StreamNotFound)) {
      throw new OperationError(`stream ${stream} not found at ${ctx.natsUrl}; the mesh is not provisioned there (every service provisions it when it starts)`);
    }
    throw err;
  }
}
