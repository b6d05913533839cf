export { processorWorker, UnknownHandlerError } from './processor-worker';
export type { ProcessorCounters, ProcessorWorkerDeps } from './processor-worker';
export { RetryLedger } from './retry-ledger';
export type { WaitingEvent } from './retry-ledger';
export { runHandler, attemptHandler, completeEmitted } from './run-handler';
export type { HandlerRun, RunOptions } from './run-handler';
export { loadHandlerModules } from './load-handler-modules';
export { HandlerStateStore, MaxStateBytes, StateTooLargeError, StateNotJsonError, keyStateOver } from './handler-state';
export type { StatePosition, StateWrite, StateBucket, StateListing } from './handler-state';
