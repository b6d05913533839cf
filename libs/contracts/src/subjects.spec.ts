import { routedHandler, stageInputSubject, stagePartitionFilter, Subjects, subjectTail, subjectToken } from './subjects';

describe('Subjects', () => {
  it('builds the subject of each stage from a partition and a type or handler', () => {
    expect(Subjects.inbound('order.created')).toBe('mesh.in.order.created');
    expect(Subjects.ingest(3, 'order.created')).toBe('mesh.ingest.3.order.created');
    expect(Subjects.routed('processor', 12, 'enrich-order')).toBe('mesh.routed.processor.12.enrich-order');
    expect(Subjects.routed('refunds', 3, 'refunds')).toBe('mesh.routed.refunds.3.refunds');
    expect(Subjects.processed(0, 'order.enriched')).toBe('mesh.processed.0.order.enriched');
    expect(Subjects.dlq('processor', 5)).toBe('mesh.dlq.processor.5');
  });

  it('builds the wildcard subject of one partition', () => {
    expect(Subjects.ingestPartition(3)).toBe('mesh.ingest.3.>');
    expect(Subjects.routedPartition('processor', 3)).toBe('mesh.routed.processor.3.>');
    expect(Subjects.processedPartition(3)).toBe('mesh.processed.3.>');
  });

  it('keeps late aggregates apart from the closed windows of an aggregation', () => {
    expect(Subjects.aggregates('per-minute')).toBe('mesh.aggregates.per-minute');
    expect(Subjects.aggregatesLate('per-minute')).toBe('mesh.aggregates.late.per-minute');
  });

  it('uses an inbound prefix that is the inbound wildcard without its ">"', () => {
    expect(`${Subjects.inboundPrefix}>`).toBe(Subjects.inboundAll);
    expect(Subjects.inbound('x').startsWith(Subjects.inboundPrefix)).toBe(true);
  });
});

describe('subjectTail', () => {
  it('gives back the dotted type of an ingest subject', () => {
    expect(subjectTail(Subjects.ingest(3, 'order.line.added'), 3)).toBe('order.line.added');
  });

  it('gives back the handler of a routed subject', () => {
    expect(subjectTail(Subjects.routed('processor', 7, 'enrich-order'), 4)).toBe('enrich-order');
    expect(routedHandler(Subjects.routed('fraud-check', 7, 'score'))).toBe('score');
  });

  it('gives the whole subject when nothing is skipped', () => {
    expect(subjectTail('mesh.in.order', 0)).toBe('mesh.in.order');
  });

  it('gives an empty string when the subject has no tokens after those skipped', () => {
    expect(subjectTail('mesh.ingest.3', 3)).toBe('');
    expect(subjectTail('mesh', 3)).toBe('');
  });
});

describe('subjectToken', () => {
  it('gives the token at a 0-based position, or an empty string past the end', () => {
    expect(subjectToken('mesh.ingest.3.order.created', 2)).toBe('3');
    expect(subjectToken('mesh.ingest.3.order.created', 9)).toBe('');
  });
});

describe('stagePartitionFilter', () => {
  it("filters a stage's consumer on its input partition; a handler service on its own token", () => {
    expect(stagePartitionFilter('router', 2)).toBe('mesh.ingest.2.>');
    expect(stagePartitionFilter('aggregator', 2)).toBe('mesh.processed.2.>');
    expect(stagePartitionFilter('processor', 2)).toBe('mesh.routed.processor.2.>');
    expect(stagePartitionFilter('refunds', 15)).toBe('mesh.routed.refunds.15.>');
    expect(stageInputSubject('refunds')).toBe('mesh.routed.refunds.>');
  });
});
