export { loadConfig, ConfigError, ConfigFileEnv } from './load-config';
export type { LoadOptions } from './load-config';
export { parseDuration, registerFormats } from './formats';
export {
  natsSchema,
  httpSchema,
  meshSchema,
  instanceSchema,
  logSchema,
  shutdownSchema,
  consumerSchema,
  envelopeSchema,
  generatedInstanceId,
  ingestSchema,
  processorSchema,
  aggregatorSchema,
  sinkSchema,
  consoleSchema,
  knownEnvNames,
  apiKeysSchema,
  httpTlsSchema,
  rateLimitSchema,
  inFlightSchema,
  faultSchema,
  FaultPointNames,
} from './schema';
