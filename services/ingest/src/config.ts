import { serviceInboxPrefix } from '@mesh/contracts';
import {
  envelopeSchema,
  ingestSchema,
  instanceSchema,
  loadConfig,
  logSchema,
  meshSchema,
  natsSchema,
  httpSchema,
  shutdownSchema,
  type LoadOptions,
} from '@mesh/config';
import { apiKeysSchema, httpTlsSchema, inFlightSchema, rateLimitSchema } from '@mesh/config';
import type { CommonConfig } from '@mesh/runtime';

export interface IngestConfig extends CommonConfig {
  envelope: { maxEvents: number; maxBytes: number };
  ingest: { maxBodyBytes: number };
  rateLimit: { events: number; bytes: number; burst: number };
  inFlight: { events: number; bytes: number };
}

export const schema = {
  nats: natsSchema(serviceInboxPrefix('ingest')),
  http: httpSchema(8080),
  httpTls: httpTlsSchema(),
  apiKeys: apiKeysSchema(),
  mesh: meshSchema(),
  instance: instanceSchema('ingest'),
  log: logSchema(),
  shutdown: shutdownSchema(),
  envelope: envelopeSchema(),
  ingest: ingestSchema(),
  rateLimit: rateLimitSchema(),
  inFlight: inFlightSchema(),
};

export function loadIngestConfig(options?: LoadOptions): IngestConfig {
  return loadConfig<IngestConfig>(schema, options);
}
