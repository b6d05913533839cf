/**
 * The query parameters of the aggregate routes, checked: a bad value gets a
 * 400 that names the parameter, the value given and what is accepted. A
 * parameter a route does not know is refused too, so a misspelt `limt=5` is
 * not silently a page of 100.
 */

export const DefaultPageLimit = 100;
export const MaxPageLimit = 1000;

/** A parameter's value is not what the route accepts; `message` says which and why. */
export class QueryParamError extends Error {
  constructor(
    readonly parameter: string,
    message: string,
  ) {
    super(message);
    this.name = 'QueryParamError';
  }
}

export interface PageQuery {
  prefix: string;
  limit: number;
  /** The last key of the previous page: this page starts after it. */
  after?: string;
}

export interface TimeRange {
  /** Epoch ms; windows ending at or before it are left out. */
  fromMs: number;
  /** Epoch ms; windows starting at or after it are left out. */
  toMs: number;
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;
const CursorTag = 'k:';

/** The opaque cursor of a page ending at `lastKey`. */
export function encodeCursor(lastKey: string): string {
  return Buffer.from(CursorTag + lastKey, 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): string | undefined {
  if (!/^[A-Za-z0-9_-]+$/.test(cursor)) return undefined;
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  // Re-encoding must give the same cursor back: anything else was not made by encodeCursor.
  return text.startsWith(CursorTag) && encodeCursor(text.slice(CursorTag.length)) === cursor ? text.slice(CursorTag.length) : undefined;
}

function only(params: URLSearchParams, accepted: readonly string[]): void {
  for (const name of new Set(params.keys())) {
    if (!accepted.includes(name)) {
      throw new QueryParamError(
        name,
        `unknown query parameter '${name}'; ${accepted.length > 0 ? `accepted: ${accepted.join(', ')}` : 'this route takes none'}`,
      );
    }
    if (params.getAll(name).length > 1) throw new QueryParamError(name, `query parameter '${name}' is given ${params.getAll(name).length} times; give it once`);
  }
}

/** `?prefix=&limit=&cursor=` of a key listing. */
export function parsePageQuery(params: URLSearchParams): PageQuery {
  only(params, ['prefix', 'limit', 'cursor']);
  const prefix = params.get('prefix') ?? '';
  const limitText = params.get('limit');
  let limit = DefaultPageLimit;
  if (limitText !== null) {
    limit = /^\d{1,7}$/.test(limitText) ? Number(limitText) : Number.NaN;
    if (!(limit >= 1 && limit <= MaxPageLimit)) {
      throw new QueryParamError(
        'limit',
        `limit ${JSON.stringify(limitText)} is not accepted: give a whole number from 1 to ${MaxPageLimit} (default ${DefaultPageLimit})`,
      );
    }
  }
  const cursor = params.get('cursor');
  let after: string | undefined;
  if (cursor !== null) {
    after = decodeCursor(cursor);
    if (after === undefined)
      throw new QueryParamError('cursor', `cursor ${JSON.stringify(cursor)} is not accepted: give the 'next' of a previous page as it is`);
  }
  return { prefix, limit, ...(after === undefined ? {} : { after }) };
}

function instant(params: URLSearchParams, name: 'from' | 'to'): number | undefined {
  const text = params.get(name);
  if (text === null) return undefined;
  const ms = RFC3339.test(text) ? Date.parse(text) : Number.NaN;
  if (Number.isNaN(ms))
    throw new QueryParamError(name, `${name} ${JSON.stringify(text)} is not accepted: give an RFC 3339 time such as "2026-01-31T12:00:00Z"`);
  return ms;
}

/** A route that takes no parameter. */
export function parseNoParams(params: URLSearchParams): void {
  only(params, []);
}

/** `?from=&to=` of a key's result: both optional; from must not be after to. */
export function parseTimeRange(params: URLSearchParams): TimeRange | undefined {
  only(params, ['from', 'to']);
  const from = instant(params, 'from');
  const to = instant(params, 'to');
  if (from === undefined && to === undefined) return undefined;
  const range = { fromMs: from ?? Number.NEGATIVE_INFINITY, toMs: to ?? Number.POSITIVE_INFINITY };
  if (range.fromMs > range.toMs) {
    throw new QueryParamError(
      'from',
      `from ${JSON.stringify(params.get('from'))} is after to ${JSON.stringify(params.get('to'))}: give a from at or before to`,
    );
  }
  return range;
}

/** Whether a window `[start, end)` shares some time with the range `[from, to)`. */
export function overlaps(window: { start: string; end: string }, range: TimeRange): boolean {
  return Date.parse(window.end) > range.fromMs && Date.parse(window.start) < range.toMs;
}
