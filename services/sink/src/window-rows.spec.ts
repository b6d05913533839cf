import { MalformedResultError, newestPerWindow, windowRows, type WindowRow } from './window-rows';

const result = (windows: object[]) => JSON.stringify({ name: 'totals', key: 'k1', windows });

describe('windowRows', () => {
  it('makes one row per window, the fields of the aggregation as value, with the stream sequence', () => {
    const rows = windowRows(
      '$KV.mesh_aggregates.totals.k1',
      42,
      result([
        { start: '2026-01-01T00:00:00.000Z', end: '2026-01-01T00:01:00.000Z', closed: true, count: 2, sum: 30 },
        { start: '2026-01-01T00:01:00.000Z', end: '2026-01-01T00:02:00.000Z', closed: false, count: 1, sum: 5 },
      ]),
    );
    expect(rows).toEqual([
      {
        name: 'totals',
        key: 'k1',
        windowStart: '2026-01-01T00:00:00.000Z',
        windowEnd: '2026-01-01T00:01:00.000Z',
        closed: true,
        value: '{"count":2,"sum":30}',
        sourceSeq: 42,
      },
      {
        name: 'totals',
        key: 'k1',
        windowStart: '2026-01-01T00:01:00.000Z',
        windowEnd: '2026-01-01T00:02:00.000Z',
        closed: false,
        value: '{"count":1,"sum":5}',
        sourceSeq: 42,
      },
    ]);
  });

  it('names the subject and sequence of a value that is not a result', () => {
    expect(() => windowRows('$KV.mesh_aggregates.x', 7, 'not json')).toThrow(MalformedResultError);
    expect(() => windowRows('$KV.mesh_aggregates.x', 7, '{"name":"totals"}')).toThrow(
      /\$KV\.mesh_aggregates\.x \(stream sequence 7\) has no name, key or windows/,
    );
    expect(() => windowRows('$KV.mesh_aggregates.x', 7, result([{ start: 'soon', end: 'later', closed: false }]))).toThrow(/not a time \("soon", "later"\)/);
  });
});

describe('newestPerWindow', () => {
  const row = (key: string, start: string, seq: number, count: number): WindowRow => ({
    name: 'totals',
    key,
    windowStart: start,
    windowEnd: start,
    closed: false,
    value: JSON.stringify({ count }),
    sourceSeq: seq,
  });

  it('keeps the update with the highest sequence of each window, whatever the order they came in', () => {
    const a = '2026-01-01T00:00:00.000Z';
    const b = '2026-01-01T00:01:00.000Z';
    const out = newestPerWindow([row('k2', a, 5, 50), row('k1', b, 9, 9), row('k1', a, 3, 3), row('k1', b, 4, 4), row('k1', a, 8, 8)]);
    expect(out.map((r) => [r.key, r.windowStart, r.sourceSeq])).toEqual([
      ['k1', a, 8],
      ['k1', b, 9],
      ['k2', a, 5],
    ]);
  });

  it('treats the same instant written differently as one window', () => {
    const out = newestPerWindow([row('k1', '2026-01-01T00:00:00.000Z', 1, 1), row('k1', '2026-01-01T00:00:00Z', 2, 2)]);
    expect(out).toHaveLength(1);
    expect(out[0].sourceSeq).toBe(2);
  });
});
