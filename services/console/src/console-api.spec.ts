import { InvalidRequestError, type DeadLetterRecord } from '@mesh/operations';
import { matchesFilter, parseFilter } from './console-api';

const letter = (o: Partial<DeadLetterRecord>): DeadLetterRecord => ({
  seq: 1,
  time: new Date('2026-01-31T12:00:00Z'),
  subject: 'mesh.dlq.processor.3',
  headers: {},
  body: new Uint8Array(),
  ...o,
});

describe('dead letter filters of the console', () => {
  it('reads stage, handler, error kind and a time range, leaving out what is empty', () => {
    const q = new URLSearchParams('stage=processor&handler=orders&kind=&since=2026-01-31T11:00:00Z');
    expect(parseFilter((n) => q.get(n))).toEqual({
      stage: 'processor',
      handler: 'orders',
      kind: undefined,
      since: new Date('2026-01-31T11:00:00Z'),
      until: undefined,
    });
  });

  it('refuses a stage that does not dead-letter and a time that is not one, naming the value and what is accepted', () => {
    expect(() => parseFilter((n) => (n === 'stage' ? 'sink' : null))).toThrow(
      new InvalidRequestError('stage = "sink" is not a stage that dead-letters; accepted: router, processor, aggregator or ingest'),
    );
    expect(() => parseFilter((n) => (n === 'until' ? 'yesterday' : null))).toThrow(
      'until = "yesterday" is not a time; give an ISO 8601 time such as 2026-01-31T12:00:00Z',
    );
  });

  it('keeps a dead letter only when every given filter matches', () => {
    const d = letter({ handler: 'orders', errorKind: 'PermanentError' });
    expect(matchesFilter(d, {})).toBe(true);
    expect(matchesFilter(d, { handler: 'orders', kind: 'PermanentError' })).toBe(true);
    expect(matchesFilter(d, { handler: 'refunds' })).toBe(false);
    expect(matchesFilter(d, { kind: 'RetryableError' })).toBe(false);
    expect(matchesFilter(d, { since: new Date('2026-01-31T12:00:01Z') })).toBe(false);
    expect(matchesFilter(d, { until: new Date('2026-01-31T11:59:59Z') })).toBe(false);
  });
});
