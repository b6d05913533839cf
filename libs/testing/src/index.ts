export { startNatsServer, waitForExit, NatsServerBinary } from './nats-server';
export type { NatsServer, NatsServerOptions } from './nats-server';
export { startNatsCluster, type NatsCluster, type NatsClusterNode, type NatsClusterOptions } from './nats-cluster';
export { startService, startMesh, stopAll, RepoRoot, ServiceNodeOptions } from './service-process';
export type { ServiceProcess, ServiceName } from './service-process';
export { orderEvent, encodeRequest, postEvents, eventually, totalsOf, totalsFor } from './events';
export type { Totals } from './events';
export type { Format } from './events';
export { readEnvFile, credentialOptions } from './credentials';
