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

  routed: (partition: number, handler: string) => `mesh.routed.${partition}.${handler}`,
  routedPartition: (partition: number) => `mesh.routed.${partition}.>`,
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
