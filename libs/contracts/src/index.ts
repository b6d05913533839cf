export { MeshVersion, Streams, Buckets, Stages, StageInput, consumerName, checkpointKey, retryRecordPrefix, PartitionCountKey } from './names';
export type { StreamName, Stage, DlqStage } from './names';
export { Subjects, subjectToken, subjectTail } from './subjects';
export { fnv1a32, partitionOf, partitionKeyOf } from './partition';
export { typeMatches, typePatternProblem } from './type-pattern';
export { encodeKvToken, decodeKvToken, aggregateKvKey } from './kv-key';
export { validateEvent, isCloudEvent, eventTimeMs, MaxTypeLength, MaxIdLength, MaxSourceLength, MaxPartitionKeyLength, MaxDataDepth } from './cloud-event';
export type { CloudEvent, EventProblem } from './cloud-event';
export { Headers, encodeEnvelope, encodeEnvelopeParts, decodeEnvelope, chunkEvents, MalformedEnvelopeError } from './envelope';
