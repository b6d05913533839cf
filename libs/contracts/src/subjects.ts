/**
 * Every NATS subject of the mesh. Partition tokens are decimal numbers; event
 * types are dotted tokens and may span several subject tokens.
 */
import type { DlqStage } from './names';

export const Subjects = {
  /** NATS request/reply entry of ingest: `mesh.in.<type>`. */
  inbound: (type: string) => `mesh.in.${type}`,
  inboundAll: 'mesh.in.>',
  inboundPrefix: 'mesh.in.',

  ingest: (partition: number, type: string) => `mesh.ingest.${partition}.${type}`,
  ingestPartition: (partition: number) => `mesh.ingest.${partition}.>`,
  ingestAll: 'mesh.ingest.>',

  /**
   * An event for `handler`, hosted by the handler service `service`. The
   * service token comes first so that one consumer (nats-server 2.9: one
   * filter subject) takes a service's partition: `mesh.routed.<service>.<p>.>`.
   */
  routed: (service: string, partition: number, handler: string) => `mesh.routed.${service}.${partition}.${handler}`,
  routedPartition: (service: string, partition: number) => `mesh.routed.${service}.${partition}.>`,
  /** Every routed event of one handler service. */
  routedService: (service: string) => `mesh.routed.${service}.>`,
  routedAll: 'mesh.routed.>',

  processed: (partition: number, type: string) => `mesh.processed.${partition}.${type}`,
  processedPartition: (partition: number) => `mesh.processed.${partition}.>`,
  processedAll: 'mesh.processed.>',

  /** Closed windows of one aggregation. */
  aggregates: (name: string) => `mesh.aggregates.${name}`,
  /** Events that arrived after their window closed (the late side output). */
  aggregatesLate: (name: string) => `mesh.aggregates.late.${name}`,
  aggregatesAll: 'mesh.aggregates.>',

  dlq: (stage: DlqStage, partition: number) => `mesh.dlq.${stage}.${partition}`,
  /** Every dead letter of one stage, whatever its partition. */
  dlqStage: (stage: DlqStage) => `mesh.dlq.${stage}.*`,
  dlqAll: 'mesh.dlq.>',
} as const;

/** The partition filter of a stage's consumer: `mesh.ingest.<p>.>` (router), `mesh.processed.<p>.>` (aggregator), `mesh.routed.<service>.<p>.>` (a handler service). */
export function stagePartitionFilter(stage: string, partition: number): string {
  if (stage === 'router') return Subjects.ingestPartition(partition);
  if (stage === 'aggregator') return Subjects.processedPartition(partition);
  return Subjects.routedPartition(stage, partition);
}

/** What a stage consumes, all partitions: its discovery endpoint's subject. */
export function stageInputSubject(stage: string): string {
  if (stage === 'router') return Subjects.ingestAll;
  if (stage === 'aggregator') return Subjects.processedAll;
  return Subjects.routedService(stage);
}

/** Tokens before the handler in `mesh.routed.<service>.<p>.<handler>`. */
export const RoutedHandlerToken = 4;

/** The handler a routed subject is for (what follows `mesh.routed.<service>.<p>.`). */
export function routedHandler(subject: string): string {
  return subjectTail(subject, RoutedHandlerToken);
}

/** Token at a 0-based position of a subject. */
export function subjectToken(subject: string, index: number): string {
  return subject.split('.')[index] ?? '';
}

/** What follows the first `skip` tokens: the type in `mesh.ingest.<p>.<type>`. */
export function subjectTail(subject: string, skip: number): string {
  let at = 0;
  for (let i = 0; i < skip; i++) {
    at = subject.indexOf('.', at) + 1;
    if (at === 0) return '';
  }
  return subject.slice(at);
}
