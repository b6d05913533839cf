/**
 * CloudEvents HTTP binary content mode (the default of the official SDKs'
 * emitters): the attributes travel as `ce-*` headers, the data as the body
 * with its own content type.
 *
 * The request is turned into the one event it carries, in the JSON event
 * format, and from there goes the way a structured request goes: the same
 * validation, the same answers. Mapping, as the HTTP binding says:
 * - every `ce-<name>` header is the attribute `<name>` (a string), its value
 *   percent-decoded;
 * - `content-type` is `datacontenttype`; when absent the data is JSON;
 * - a JSON content type (`application/json`, `text/json`, `*+json`) has its
 *   body parsed into `data`; a text one (`text/*`, or any with a charset) is
 *   kept as a string in `data`; anything else is `data_base64`;
 * - an empty body is an event without data.
 * A structured (`application/cloudevents...`) content type wins over `ce-*`
 * headers: such a request is not binary mode.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { EventProblem } from '@mesh/contracts';
import type { AcceptAnswer } from './accept';

/** The header that marks a binary-mode request. */
const SpecVersionHeader = 'ce-specversion';
const Prefix = 'ce-';

export type BinaryModeResult =
  { ok: true; contentType: 'application/cloudevents+json'; body: Buffer } | { ok: false; status: 400 | 415; error: string; problems?: EventProblem[] };

/**
 * What `accept` takes from an HTTP request: a binary-mode one as its event in
 * the JSON format, any other as it came; or the answer to a binary-mode
 * request that carries no readable event.
 */
export function structuredRequest(
  headers: IncomingHttpHeaders,
  body: Buffer,
): { ok: true; contentType: string | undefined; body: Buffer } | { ok: false; answer: AcceptAnswer } {
  if (!isBinaryMode(headers)) return { ok: true, contentType: headers['content-type'], body };
  const event = binaryModeEvent(headers, body);
  if (event.ok) return event;
  return { ok: false, answer: { status: event.status, body: { error: event.error, ...(event.problems ? { problems: event.problems } : {}) } } };
}

/** Whether the request is in binary content mode (and so `binaryModeEvent` applies). */
export function isBinaryMode(headers: IncomingHttpHeaders): boolean {
  const type = (headers['content-type'] ?? '').trim().toLowerCase();
  return headers[SpecVersionHeader] !== undefined && !type.startsWith('application/cloudevents');
}

/** Only well-formed `%XX` runs are decoded: a stray `%` from a sender that did not encode stays as it is. */
function percentDecode(value: string): string {
  return value.replace(/(?:%[0-9a-fA-F]{2})+/g, (run) => {
    try {
      return decodeURIComponent(run);
    } catch {
      return run;
    }
  });
}

function mediaType(contentType: string): { type: string; charset?: string } {
  const [type, ...params] = contentType.split(';');
  const charset = params.map((p) => p.trim().toLowerCase()).find((p) => p.startsWith('charset='));
  return { type: type.trim().toLowerCase(), charset: charset?.slice('charset='.length).replace(/"/g, '') };
}

function isJson(type: string): boolean {
  return type === 'application/json' || type === 'text/json' || type.endsWith('+json');
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The event a binary-mode request carries, as a structured (JSON format) body for `accept`. */
export function binaryModeEvent(headers: IncomingHttpHeaders, body: Buffer): BinaryModeResult {
  const event: Record<string, unknown> = {};
  const problems: EventProblem[] = [];
  for (const [name, raw] of Object.entries(headers)) {
    if (!name.startsWith(Prefix) || raw === undefined) continue;
    const attribute = name.slice(Prefix.length);
    if (attribute === 'data' || attribute === 'data_base64' || attribute === 'datacontenttype') {
      const instead = attribute === 'datacontenttype' ? 'the Content-Type header' : 'the body';
      problems.push({ index: 0, attribute, problem: `is not sent as the header ${name} in binary mode; it is ${instead}` });
      continue;
    }
    event[attribute] = percentDecode(Array.isArray(raw) ? raw.join(',') : raw);
  }
  if (problems.length > 0) return { ok: false, status: 400, error: `${problems.length} problem(s) in the request; nothing was stored`, problems };

  const contentType = headers['content-type'];
  if (contentType !== undefined && contentType.trim() !== '') event.datacontenttype = contentType;
  if (body.length > 0) {
    const { type, charset } = mediaType(contentType ?? 'application/json');
    const textual = isJson(type) || type.startsWith('text/') || charset !== undefined;
    if (textual && charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
      return { ok: false, status: 415, error: `charset ${JSON.stringify(charset)} is not accepted; send UTF-8` };
    }
    if (textual) {
      let text: string;
      try {
        text = utf8.decode(body);
      } catch {
        return { ok: false, status: 400, error: `the body is not valid UTF-8, as its content type ${JSON.stringify(contentType)} says it is` };
      }
      if (isJson(type)) {
        try {
          event.data = JSON.parse(text);
        } catch (err) {
          return {
            ok: false,
            status: 400,
            error: `the body is not valid JSON, as its content type ${JSON.stringify(contentType ?? '(none: JSON)')} says it is: ${(err as Error).message}`,
          };
        }
      } else {
        event.data = text;
      }
    } else {
      event.data_base64 = body.toString('base64');
    }
  }
  return { ok: true, contentType: 'application/cloudevents+json', body: Buffer.from(JSON.stringify(event)) };
}
