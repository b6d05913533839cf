/**
 * Reading and acting on a running mesh, shared by the `mesh` CLI and the
 * console: dead letters (list, read, redrive), the route table (read,
 * validate, store, remove), partitions (lag, ack floor, owner).
 */
export { InvalidRequestError, OperationError } from './errors';
export { isNotFound, requireStream } from './mesh-context';
export type { MeshContext } from './mesh-context';
export { oneOf, printable } from './printable';
export { DlqStages, RedriveHeader, redriveMsgId, dlqFilter, dlqSubjectParts, StageInputSubjects, leaseKeyOf } from './mesh-names';
export { recordedPartitions, checkPartition } from './mesh-info';
export { toRecord, getDeadLetter, readDeadLetters, eventLabel, summaryJson } from './dead-letters';
export type { DeadLetterRecord, DeadLetterQuery } from './dead-letters';
export { redriveOne, redriveProblem } from './redrive';
export type { Redriven } from './redrive';
export { checkRuleName, routesBucket, routeEntries, validateRule, storeRule, removeRule } from './route-table';
export type { RouteEntry } from './route-table';
export { partitionRows } from './partitions';
export type { PartitionRow } from './partitions';
export { allStages, bucketKeys, handlerRecords, knownHandlerServices, liveMembers, openBucket } from './handler-services';
export type { Member } from './handler-services';
