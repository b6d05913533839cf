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
  processorSchema,
  shutdownSchema,
  type LoadOptions,
} from '@mesh/config';
import { apiKeysSchema, faultSchema, httpTlsSchema } from '@mesh/config';
import type { CommonConfig } from '@mesh/runtime';

export interface ProcessorConfig extends CommonConfig {
  consumer: { maxAckPending: number; ackWait: number; batchMessages: number };
  faults: { point: string };
  envelope: { maxEvents: number; maxBytes: number };
  processor: { keyConcurrency: number; handlerModules: string };
}

export const schema = {
  nats: natsSchema(serviceInboxPrefix('processor')),
  http: httpSchema(8082),
  httpTls: httpTlsSchema(),
  apiKeys: apiKeysSchema(),
  mesh: meshSchema(),
  instance: instanceSchema('processor'),
  log: logSchema(),
  shutdown: shutdownSchema(),
  consumer: consumerSchema(),
  faults: faultSchema(),
  envelope: envelopeSchema(),
  processor: processorSchema(),
};

export function loadProcessorConfig(options?: LoadOptions): ProcessorConfig {
  return loadConfig<ProcessorConfig>(schema, options);
}
