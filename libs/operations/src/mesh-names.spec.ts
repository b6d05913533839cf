import { Subjects } from '@mesh/contracts';
import { dlqFilter, dlqSubjectParts, leaseKeyOf, redriveMsgId } from './mesh-names';

describe('mesh names the CLI derives from the contracts', () => {
  it('filters dead letters by stage, partition, both or neither', () => {
    expect(dlqFilter()).toBe(Subjects.dlqAll);
    expect(dlqFilter('processor')).toBe('mesh.dlq.processor.*');
    expect(dlqFilter(undefined, 3)).toBe('mesh.dlq.*.3');
    expect(dlqFilter('ingest', 12)).toBe(Subjects.dlq('ingest', 12));
  });

  it('reads stage and partition back from a DLQ subject', () => {
    expect(dlqSubjectParts(Subjects.dlq('aggregator', 15))).toEqual({ stage: 'aggregator', partition: 15 });
    expect(dlqSubjectParts('mesh.dlq.Other_1.x')).toEqual({ stage: undefined, partition: undefined });
    expect(dlqSubjectParts(Subjects.dlq('refunds', 3))).toEqual({ stage: 'refunds', partition: 3 });
  });

  it('names leases <stage>.<NN> and redrives redrive:<seq>', () => {
    expect(leaseKeyOf('router', 3)).toBe('router.03');
    expect(leaseKeyOf('aggregator', 115)).toBe('aggregator.115');
    expect(redriveMsgId(42)).toBe('redrive:42');
  });
});
