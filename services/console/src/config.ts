import { serviceInboxPrefix } from '@mesh/contracts';
import {
  apiKeysSchema,
  consoleSchema,
  httpSchema,
  httpTlsSchema,
  instanceSchema,
  loadConfig,
  logSchema,
  meshSchema,
  natsSchema,
  shutdownSchema,
  type LoadOptions,
} from '@mesh/config';
import type { CommonConfig } from '@mesh/runtime';

export interface ConsoleConfig extends CommonConfig {
  console: { refreshInterval: number; metricsKey: string };
}

export const schema = {
  nats: natsSchema(serviceInboxPrefix('console')),
  http: httpSchema(8084),
  httpTls: httpTlsSchema(),
  apiKeys: apiKeysSchema(),
  mesh: meshSchema(),
  instance: instanceSchema('console'),
  log: logSchema(),
  shutdown: shutdownSchema(),
  console: consoleSchema(),
};

export function loadConsoleConfig(options?: LoadOptions): ConsoleConfig {
  return loadConfig<ConsoleConfig>(schema, options);
}
