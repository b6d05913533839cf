/**
 * What `npm start` can be told through its environment. It is a developer's
 * tool, not a service: these few variables are read here and nowhere else.
 *
 * - NATS_URL: the NATS server to use (default nats://127.0.0.1:4222); when
 *   none answers there and it is local, a nats-server is started on its port.
 * - MESH_DEV_DATA_DIR: where that nats-server keeps its store (default .data/nats).
 * - MESH_DEV_PORT_BASE: HTTP port of ingest; router, processor,
 *   aggregator, console and sink take the next five (default 8080, so
 *   8080-8084, and 8085 for the sink).
 */
import { join, resolve } from 'node:path';

export interface DevSettings {
  natsUrl: string;
  dataDir: string;
  portBase: number;
}

export const DefaultPortBase = 8080;

/** The variables above that are this tool's own; the services refuse unknown MESH_ variables, so they never see them. */
export const DevOnlyEnv = ['MESH_DEV_DATA_DIR', 'MESH_DEV_PORT_BASE'] as const;

/** The environment to pass on to a service: this one without the tool's own variables. */
export function serviceEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out = { ...env };
  for (const name of DevOnlyEnv) delete out[name];
  return out;
}

export function devSettings(env: NodeJS.ProcessEnv, repoRoot: string): DevSettings {
  const rawBase = env.MESH_DEV_PORT_BASE;
  const portBase = rawBase === undefined || rawBase === '' ? DefaultPortBase : Number(rawBase);
  if (!Number.isInteger(portBase) || portBase < 1 || portBase > 65_530) {
    throw new Error(`MESH_DEV_PORT_BASE is ${JSON.stringify(rawBase)}; it must be a port from 1 to 65530 (the services use it and the next five)`);
  }
  return {
    natsUrl: env.NATS_URL || 'nats://127.0.0.1:4222',
    dataDir: env.MESH_DEV_DATA_DIR ? resolve(env.MESH_DEV_DATA_DIR) : join(repoRoot, '.data', 'nats'),
    portBase,
  };
}
