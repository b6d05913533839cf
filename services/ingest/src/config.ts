import {
  envelopeSchema, ingestSchema, instanceSchema, loadConfig, logSchema, meshSchema, natsSchema, httpSchema, shutdownSchema,
  type LoadOptions,
} from '@mesh/config';
import type { CommonConfig } from '@mesh/runtime';

export interface IngestConfig extends CommonConfig {
  envelope: { maxEvents: number; maxBytes: number };
  ingest: { maxBodyBytes: number };
}

export const schema = {
  nats: natsSchema('ingest'),
  http: httpSchema(8080),
  mesh: meshSchema(),
  instance: instanceSchema('ingest'),
  log: logSchema(),
  shutdown: shutdownSchema(),
  envelope: envelopeSchema(),
  ingest: ingestSchema(),
};

export function loadIngestConfig(options?: LoadOptions): IngestConfig {
  return loadConfig<IngestConfig>(schema, options);
}
