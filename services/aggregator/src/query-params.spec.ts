import { DefaultPageLimit, encodeCursor, overlaps, parseNoParams, parsePageQuery, parseTimeRange, QueryParamError } from './query-params';

const q = (text: string) => new URLSearchParams(text);

function problem(fn: () => unknown): { parameter: string; message: string } {
  try {
    fn();
  } catch (err) {
    if (err instanceof QueryParamError) return { parameter: err.parameter, message: err.message };
    throw err;
  }
  throw new Error('no QueryParamError');
}

describe('parsePageQuery', () => {
  it('defaults to the first page of 100 keys with any prefix', () => {
    expect(parsePageQuery(q(''))).toEqual({ prefix: '', limit: DefaultPageLimit });
  });

  it('takes a prefix, a limit from 1 to 1000 and a cursor made by encodeCursor, whatever the key holds', () => {
    const key = 'k 17/é=.x';
    expect(parsePageQuery(q(`prefix=k%2017&limit=1000&cursor=${encodeCursor(key)}`))).toEqual({ prefix: 'k 17', limit: 1000, after: key });
    expect(parsePageQuery(q('limit=1')).limit).toBe(1);
  });

  it.each(['0', '1001', '-1', '1.5', 'ten', '', '00000000001'])('refuses the limit %j, saying what is accepted', (limit) => {
    expect(problem(() => parsePageQuery(q(`limit=${limit}`)))).toEqual({
      parameter: 'limit',
      message: `limit ${JSON.stringify(limit)} is not accepted: give a whole number from 1 to 1000 (default 100)`,
    });
  });

  it.each(['garbage!', 'a2V5', Buffer.from('k:xy').toString('base64'), ''])('refuses the cursor %j, which encodeCursor did not make', (cursor) => {
    expect(problem(() => parsePageQuery(q(`cursor=${encodeURIComponent(cursor)}`))).parameter).toBe('cursor');
  });

  it('refuses an unknown or repeated parameter, naming it', () => {
    expect(problem(() => parsePageQuery(q('limt=5')))).toEqual({
      parameter: 'limt',
      message: "unknown query parameter 'limt'; accepted: prefix, limit, cursor",
    });
    expect(problem(() => parsePageQuery(q('limit=5&limit=6')))).toEqual({
      parameter: 'limit',
      message: "query parameter 'limit' is given 2 times; give it once",
    });
    expect(problem(() => parseNoParams(q('x=1')))).toEqual({ parameter: 'x', message: "unknown query parameter 'x'; this route takes none" });
  });
});

describe('parseTimeRange and overlaps', () => {
  const w = (start: string, end: string) => ({ start, end });

  it('gives no range without from and to, and an open end for the one not given', () => {
    expect(parseTimeRange(q(''))).toBeUndefined();
    expect(parseTimeRange(q('from=2026-01-01T00:00:00Z'))).toEqual({ fromMs: Date.parse('2026-01-01T00:00:00Z'), toMs: Number.POSITIVE_INFINITY });
    expect(parseTimeRange(q('to=2026-01-01T01:00:00%2B01:00'))).toEqual({ fromMs: Number.NEGATIVE_INFINITY, toMs: Date.parse('2026-01-01T00:00:00Z') });
  });

  it.each(['yesterday', '2026-01-01', '2026-01-01T00:00:00', '1767225600000'])('refuses from=%j, which is not RFC 3339', (from) => {
    expect(problem(() => parseTimeRange(q(`from=${from}`)))).toEqual({
      parameter: 'from',
      message: `from ${JSON.stringify(from)} is not accepted: give an RFC 3339 time such as "2026-01-31T12:00:00Z"`,
    });
  });

  it('refuses a from after the to', () => {
    expect(problem(() => parseTimeRange(q('from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z'))).parameter).toBe('from');
  });

  it('keeps a window that shares time with [from, to), not one that only touches it', () => {
    const range = parseTimeRange(q('from=2026-01-01T00:01:00Z&to=2026-01-01T00:02:00Z'))!;
    expect(overlaps(w('2026-01-01T00:00:00.000Z', '2026-01-01T00:01:00.000Z'), range)).toBe(false);
    expect(overlaps(w('2026-01-01T00:00:30.000Z', '2026-01-01T00:01:30.000Z'), range)).toBe(true);
    expect(overlaps(w('2026-01-01T00:01:00.000Z', '2026-01-01T00:02:00.000Z'), range)).toBe(true);
    expect(overlaps(w('2026-01-01T00:02:00.000Z', '2026-01-01T00:03:00.000Z'), range)).toBe(false);
  });
});
