import { serviceInboxPrefix } from '@mesh/contracts';
import {
  apiKeysSchema,
  consumerSchema,
  httpSchema,
  httpTlsSchema,
  instanceSchema,
  loadConfig,
  logSchema,
  meshSchema,
  natsSchema,
  shutdownSchema,
  sinkSchema,
  type LoadOptions,
} from '@mesh/config';
import type { CommonConfig } from '@mesh/runtime';

export interface SinkConfig extends CommonConfig {
  consumer: { maxAckPending: number; ackWait: number; batchMessages: number };
  sink: { postgresUrl: string; batchSize: number; flushInterval: number; retryMin: number; retryMax: number; poolSize: number };
}

export const schema = {
  nats: natsSchema(serviceInboxPrefix('sink')),
  http: httpSchema(8085),
  httpTls: httpTlsSchema(),
  apiKeys: apiKeysSchema(),
  mesh: meshSchema(),
  instance: instanceSchema('sink'),
  log: logSchema(),
  shutdown: shutdownSchema(),
  // ackWait is what counts here: how long an update may stay unwritten before JetStream offers it again.
  consumer: consumerSchema(),
  sink: sinkSchema(),
};

export function loadSinkConfig(options?: LoadOptions): SinkConfig {
  return loadConfig<SinkConfig>(schema, options);
}
