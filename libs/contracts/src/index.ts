export {
  MeshVersion,
  Streams,
  Buckets,
  Stages,
  StageInput,
  stageInput,
  isHandlerService,
  handlerServiceNameProblem,
  ReservedServiceNames,
  MaxServiceNameLength,
  parseHandlerRecord,
  consumerName,
  checkpointKey,
  checkpointPrefix,
  retryRecordPrefix,
  handlerStatePrefix,
  PartitionCountKey,
  RouteKeyPrefix,
  SinkConsumer,
} from './names';
export type { StreamName, Stage, BuiltInStage, DlqStage, HandlerRecord } from './names';
export { Subjects, subjectToken, subjectTail, routedHandler, RoutedHandlerToken, stagePartitionFilter, stageInputSubject } from './subjects';
export { fnv1a32, mix32, partitionOf, partitionKeyOf } from './partition';
export { typeMatches, typePatternProblem } from './type-pattern';
export { encodeKvToken, decodeKvToken, aggregateKvKey } from './kv-key';
export { validateEvent, isCloudEvent, eventTimeMs, MaxTypeLength, MaxIdLength, MaxSourceLength, MaxPartitionKeyLength, MaxDataDepth } from './cloud-event';
export type { CloudEvent, EventProblem } from './cloud-event';
export { Headers, encodeEnvelope, encodeEnvelopeParts, decodeEnvelope, chunkEvents, MalformedEnvelopeError } from './envelope';
export { decodeIndex, encodeIndex, encodeIndexedEnvelope, indexEntryOf, sliceEnvelope, traceSampled } from './envelope-index';
export type { IndexEntry } from './envelope-index';
export { JsApi, kvStream, kvSubject } from './jetstream-api';
export {
  MeshServices,
  serviceInboxPrefix,
  servicePermissions,
  handlerServicePermissions,
  ServiceNeeds,
  HandlerServiceNeeds,
  IngestQueueGroup,
} from './service-permissions';
export type { MeshService, ServicePermissions, Grant } from './service-permissions';
export { parseRule } from './route-rule';
export type { RouteRule } from './route-rule';
export { ReplayEpochKey, replayAckKey, replayAckPrefix, epochMsgId, parseReplaySignal } from './replay';
export type { ReplaySignal, ReplayAck, ReplayPhase } from './replay';
