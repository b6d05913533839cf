import { serviceInboxPrefix } from '@mesh/contracts';
import {
  consumerSchema,
  envelopeSchema,
  instanceSchema,
  loadConfig,
  logSchema,
  meshSchema,
  natsSchema,
  httpSchema,
  shutdownSchema,
  type LoadOptions,
} from '@mesh/config';
import { apiKeysSchema, faultSchema, httpTlsSchema } from '@mesh/config';
import type { CommonConfig } from '@mesh/runtime';

export interface RouterConfig extends CommonConfig {
  consumer: { maxAckPending: number; ackWait: number; batchMessages: number };
  faults: { point: string };
  envelope: { maxEvents: number; maxBytes: number };
}

export const schema = {
  nats: natsSchema(serviceInboxPrefix('router')),
  http: httpSchema(8081),
  httpTls: httpTlsSchema(),
  apiKeys: apiKeysSchema(),
  mesh: meshSchema(),
  instance: instanceSchema('router'),
  log: logSchema(),
  shutdown: shutdownSchema(),
  consumer: consumerSchema(),
  faults: faultSchema(),
  envelope: envelopeSchema(),
};

export function loadRouterConfig(options?: LoadOptions): RouterConfig {
  return loadConfig<RouterConfig>(schema, options);
}
