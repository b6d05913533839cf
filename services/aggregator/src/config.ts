import { serviceInboxPrefix } from '@mesh/contracts';
import {
  aggregatorSchema,
  consumerSchema,
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

export interface AggregatorConfig extends CommonConfig {
  consumer: { maxAckPending: number; ackWait: number; batchMessages: number };
  faults: { point: string };
  aggregator: { allowedLateness: number; retainWindows: number; stateRetention: number; updatesHeartbeat: number; aggregationModules: string };
}

export const schema = {
  nats: natsSchema(serviceInboxPrefix('aggregator')),
  http: httpSchema(8083),
  httpTls: httpTlsSchema(),
  apiKeys: apiKeysSchema(),
  mesh: meshSchema(),
  instance: instanceSchema('aggregator'),
  log: logSchema(),
  shutdown: shutdownSchema(),
  consumer: consumerSchema(),
  faults: faultSchema(),
  aggregator: aggregatorSchema(),
};

export function loadAggregatorConfig(options?: LoadOptions): AggregatorConfig {
  return loadConfig<AggregatorConfig>(schema, options);
}
