export { connectNats } from './connect';
export type { ConnectOptions } from './connect';
export { provisionMesh, ensurePartitionConsumers, partitionConsumerConfig, defaultProvisionOptions } from './provision';
export type { ProvisionOptions } from './provision';
export { PartitionCountMismatchError } from './errors';
export { partitionMessages } from './partition-messages';
export type { PartitionMessagesOptions } from './partition-messages';
export { publishEnvelope, publishAll } from './publish';
export type { EnvelopeOut } from './publish';
