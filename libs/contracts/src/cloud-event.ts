/**
 * The event of the mesh: a CloudEvent 1.0 in its JSON format.
 * `source` + `id` identify an event; sending it twice stores it once.
 */

export interface CloudEvent<T = unknown> {
  specversion: '1.0';
  id: string;
  source: string;
  type: string;
  /** RFC 3339 event time; the time windows use. Ingest fills it with the arrival time. */
  time?: string;
  subject?: string;
  datacontenttype?: string;
  dataschema?: string;
  data?: T;
  data_base64?: string;
  /** Partitioning extension: the key whose events are kept in order. */
  partitionkey?: string;
  /** W3C trace context of the event (distributed tracing extension). */
  traceparent?: string;
  tracestate?: string;
  [extension: string]: unknown;
}

/** One thing wrong with one event of a request. */
export interface EventProblem {
  /** Position of the event in the request (0 for a single event). */
  index: number;
  /** The attribute at fault, or '' for the event as a whole. */
  attribute: string;
  problem: string;
}

export const MaxTypeLength = 200;
export const MaxIdLength = 512;
export const MaxSourceLength = 1024;
export const MaxPartitionKeyLength = 1024;
/** Deepest nesting of arrays and objects accepted in `data` (deeper JSON overflows the stack of every stage). */
export const MaxDataDepth = 64;

/** Depth of nested arrays and objects, without recursion, stopping past `limit`. */
function depthExceeds(value: unknown, limit: number): boolean {
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    if (depth > limit) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v)) {
      if (typeof child === 'object' && child !== null) stack.push([child, depth + 1]);
    }
  }
  return false;
}

const TYPE = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;
const EXTENSION_NAME = /^[a-z0-9]{1,20}$/;
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;
const TRACEPARENT = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

const STRING_ATTRIBUTES = ['subject', 'datacontenttype', 'dataschema', 'data_base64', 'tracestate'] as const;
const KNOWN = new Set([
  'specversion',
  'id',
  'source',
  'type',
  'time',
  'subject',
  'datacontenttype',
  'dataschema',
  'data',
  'data_base64',
  'partitionkey',
  'traceparent',
  'tracestate',
]);

/** Date.parse rolls 2026-02-30 over to March; a timestamp must name a real day and time. */
function isRealDate(text: string): boolean {
  const [y, mo, d, h, mi, s] = text
    .slice(0, 19)
    .split(/[-Tt:]/)
    .map(Number);
  const date = new Date(Date.UTC(y, mo - 1, d, h, mi, s));
  return (
    !Number.isNaN(Date.parse(text)) && date.getUTCFullYear() === y && date.getUTCMonth() === mo - 1 && date.getUTCDate() === d && h < 24 && mi < 60 && s < 61
  );
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

function describe(value: unknown): string {
  const text = typeof value === 'string' ? JSON.stringify(value) : `${typeName(value)}`;
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function identifierProblem(value: unknown, max: number): string | undefined {
  if (typeof value !== 'string') return value === undefined ? 'is required' : `must be a string, got ${typeName(value)}`;
  if (value.length === 0) return 'must not be empty';
  if (value.length > max) return `must be at most ${max} characters, got ${value.length}`;
  if (CONTROL.test(value)) return 'must not contain control characters';
  return undefined;
}

/**
 * Every problem of one candidate event, as the HTTP and NATS entries report
 * them: which attribute, what is wrong and what would be accepted.
 */
export function validateEvent(candidate: unknown, index = 0): EventProblem[] {
  const problems: EventProblem[] = [];
  const add = (attribute: string, problem: string) => problems.push({ index, attribute, problem });
  if (typeof candidate !== 'object' || candidate === null || Array.isArray(candidate)) {
    add('', `an event must be a JSON object, got ${typeName(candidate)}`);
    return problems;
  }
  const e = candidate as Record<string, unknown>;

  if (e.specversion !== '1.0') {
    add('specversion', e.specversion === undefined ? 'is required and must be "1.0"' : `must be "1.0", got ${describe(e.specversion)}`);
  }
  const idProblem = identifierProblem(e.id, MaxIdLength);
  if (idProblem) add('id', idProblem);
  const sourceProblem = identifierProblem(e.source, MaxSourceLength);
  if (sourceProblem) add('source', sourceProblem);

  if (typeof e.type !== 'string') {
    add('type', e.type === undefined ? 'is required' : `must be a string, got ${typeName(e.type)}`);
  } else if (e.type.length > MaxTypeLength || !TYPE.test(e.type)) {
    add(
      'type',
      `must be dot-separated tokens of letters, digits, '_' or '-' (at most ${MaxTypeLength} characters), such as "order.created"; got ${describe(e.type)}`,
    );
  }

  if (e.time !== undefined) {
    if (typeof e.time !== 'string' || !RFC3339.test(e.time) || !isRealDate(e.time)) {
      add('time', `must be an RFC 3339 timestamp such as "2026-01-31T12:00:00Z", got ${describe(e.time)}`);
    }
  }
  for (const name of STRING_ATTRIBUTES) {
    if (e[name] !== undefined && typeof e[name] !== 'string') add(name, `must be a string, got ${typeName(e[name])}`);
  }
  if (e.partitionkey !== undefined) {
    const p = identifierProblem(e.partitionkey, MaxPartitionKeyLength);
    if (p) add('partitionkey', p);
  }
  if (e.traceparent !== undefined && (typeof e.traceparent !== 'string' || !TRACEPARENT.test(e.traceparent))) {
    add('traceparent', `must be a W3C traceparent such as "00-<32 hex>-<16 hex>-01", got ${describe(e.traceparent)}`);
  }
  if (e.data !== undefined && e.data_base64 !== undefined) add('data_base64', 'must not be present together with data');
  if (e.data !== undefined && depthExceeds(e.data, MaxDataDepth)) add('data', `must not nest arrays and objects deeper than ${MaxDataDepth} levels`);

  for (const name of Object.keys(e)) {
    if (KNOWN.has(name)) continue;
    if (!EXTENSION_NAME.test(name)) {
      add(name, 'is not a valid extension attribute name: use 1 to 20 lowercase letters or digits');
      continue;
    }
    const v = e[name];
    if (v !== null && typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') {
      add(name, `extension attributes must be a string, number or boolean, got ${typeName(v)}`);
    }
  }
  return problems;
}

export function isCloudEvent(candidate: unknown): candidate is CloudEvent {
  return validateEvent(candidate).length === 0;
}

/** Event time in epoch milliseconds. */
export function eventTimeMs(event: CloudEvent): number {
  return event.time === undefined ? NaN : Date.parse(event.time);
}
