/**
 * Names the operations need beyond what '@mesh/contracts' exports, each derived
 * from the contracts so nothing here spells a subject by hand. When the
 * contracts grow these (a DLQ filter by stage, a redrive header, the lease
 * key), this file shrinks to re-exports.
 */
import { handlerServiceNameProblem, Stages, Subjects, type DlqStage, type Stage } from '@mesh/contracts';

/** Every stage that dead-letters, in the order they are listed. */
export const DlqStages: readonly DlqStage[] = [...Stages, 'ingest'];

/** Header a redriven envelope carries: the DLQ sequence it came from. */
export const RedriveHeader = 'Mesh-Redrive';

/** Message id of a redrive: redriving one dead letter twice within the duplicate window stores it once. */
export function redriveMsgId(dlqSeq: number): string {
  return `redrive:${dlqSeq}`;
}

// Where the stage and partition tokens sit in `Subjects.dlq(stage, p)`.
const sample = Subjects.dlq('router', 0).split('.');
const STAGE_TOKEN = sample.indexOf('router');
const PARTITION_TOKEN = sample.indexOf('0');

/** Subject filter of the dead letters of one stage and/or partition (wildcards for what is not given). */
export function dlqFilter(stage?: DlqStage, partition?: number): string {
  if (stage === undefined && partition === undefined) return Subjects.dlqAll;
  const tokens = Subjects.dlq(stage ?? 'router', partition ?? 0).split('.');
  if (stage === undefined) tokens[STAGE_TOKEN] = '*';
  if (partition === undefined) tokens[PARTITION_TOKEN] = '*';
  return tokens.join('.');
}

/** Stage and partition named by a DLQ subject (undefined when a token is not what it should be). */
export function dlqSubjectParts(subject: string): { stage?: DlqStage; partition?: number } {
  const tokens = subject.split('.');
  const token = tokens[STAGE_TOKEN];
  const stage = DlqStages.find((s) => s === token) ?? (token !== undefined && handlerServiceNameProblem(token) === undefined ? token : undefined);
  const p = tokens[PARTITION_TOKEN];
  const partition = p !== undefined && /^\d+$/.test(p) ? Number(p) : undefined;
  return { stage, partition };
}

/** The subjects a redrive may publish to: the input streams of the stages. */
export const StageInputSubjects: readonly string[] = [Subjects.ingestAll, Subjects.routedAll, Subjects.processedAll];

/**
 * Key of a stage's partition lease in `mesh_leases`: `router.03`.
 * The same as `leaseKey` of the partition ownership in '@mesh/messaging'
 * ; operations only read it.
 */
export function leaseKeyOf(stage: Stage, partition: number): string {
  return `${stage}.${String(partition).padStart(2, '0')}`;
}
