/**
 * The config of a handler service (the processor and every generated one):
 * the shared convict pieces, with the instance id, the NATS inbox prefix and
 * the HTTP port defaulting from the service's name and its place in the repo.
 */
import { serviceInboxPrefix } from '@mesh/contracts';
import {
  apiKeysSchema,
  consumerSchema,
  envelopeSchema,
  faultSchema,
  httpSchema,
  httpTlsSchema,
  instanceSchema,
  loadConfig,
  logSchema,
  meshSchema,
  natsSchema,
  processorSchema,
  shutdownSchema,
  type LoadOptions,
} from '@mesh/config';
import type { CommonConfig } from '../service';

export interface HandlerServiceConfig extends CommonConfig {
  consumer: { maxAckPending: number; ackWait: number; batchMessages: number };
  faults: { point: string };
  envelope: { maxEvents: number; maxBytes: number };
  /** Kept under `processor` (MESH_KEY_CONCURRENCY, MESH_HANDLER_MODULES): the processor was the first handler service. */
  processor: { keyConcurrency: number; handlerModules: string };
}

/** The schema of handler service `name`; `httpPort` is its HTTP_PORT default. */
export function handlerServiceSchema(name: string, httpPort: number) {
  return {
    nats: natsSchema(serviceInboxPrefix(name)),
    http: httpSchema(httpPort),
    httpTls: httpTlsSchema(),
    apiKeys: apiKeysSchema(),
    mesh: meshSchema(),
    instance: instanceSchema(name),
    log: logSchema(),
    shutdown: shutdownSchema(),
    consumer: consumerSchema(),
    faults: faultSchema(),
    envelope: envelopeSchema(),
    processor: processorSchema(),
  };
}

export function loadHandlerServiceConfig(name: string, httpPort: number, options?: LoadOptions): HandlerServiceConfig {
  return loadConfig<HandlerServiceConfig>(handlerServiceSchema(name, httpPort), options);
}
