/** `mesh dlq ls`: dead letters, oldest first, one line each. */
import { Streams, type DlqStage } from '@mesh/contracts';
import type { CommandContext } from './context';
import { checkPartition, dlqFilter, eventLabel, readDeadLetters, summaryJson, type DeadLetterRecord } from '@mesh/operations';
import { clip, formatTable, printable } from './output';

export interface DlqListOptions {
  stage?: DlqStage;
  partition?: number;
  limit: number;
}

const ErrorWidth = 60;

function row(d: DeadLetterRecord): string[] {
  const cell = (v: string | number | undefined) => (v === undefined || v === '' ? '-' : printable(String(v)));
  const origin = d.originalSubject === undefined ? '-' : `${printable(d.originalSubject)} #${d.originalSequence ?? '?'}`;
  return [
    String(d.seq),
    d.time.toISOString().replace(/\.\d+Z$/, 'Z'),
    cell(d.stage),
    cell(d.partition),
    cell(d.handler),
    cell(d.attempts),
    clip(cell(d.error), ErrorWidth),
    origin,
    printable(eventLabel(d)),
    d.events ? printable(d.events[0].type) : '-',
  ];
}

export async function dlqList(ctx: CommandContext, o: DlqListOptions): Promise<void> {
  if (o.partition !== undefined) await checkPartition(ctx, o.partition);
  const { letters, matching } = await readDeadLetters(ctx, { filter: dlqFilter(o.stage, o.partition), limit: o.limit });

  if (ctx.json) {
    ctx.out.out(JSON.stringify({ deadLetters: letters.map(summaryJson), matching }, null, 2));
    return;
  }
  const where = [o.stage && `stage ${o.stage}`, o.partition !== undefined && `partition ${o.partition}`].filter(Boolean).join(', ');
  if (letters.length === 0) {
    ctx.out.out(`no dead letters in ${Streams.dlq}${where ? ` (${where})` : ''}`);
    return;
  }
  const header = ['SEQ', 'TIME', 'STAGE', 'P', 'HANDLER', 'ATTEMPTS', 'ERROR', 'ORIGINAL (subject #seq)', 'EVENT', 'TYPE'];
  for (const line of formatTable(header, letters.map(row))) ctx.out.out(line);
  if (matching > letters.length) {
    ctx.out.out(`(${letters.length} of ${matching} dead letters; --limit ${matching} lists them all)`);
  }
}
