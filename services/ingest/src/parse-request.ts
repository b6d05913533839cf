/**
 * Turns a request body into candidate events according to its content type.
 * Structure problems (bad JSON, wrong shape) are reported per event where
 * they can be, so one answer lists everything that is wrong.
 */
import type { EventProblem } from '@mesh/contracts';

export const AcceptedContentTypes = ['application/cloudevents+json', 'application/json', 'application/cloudevents-batch+json', 'application/x-ndjson'] as const;

export type ParseResult = { ok: true; candidates: unknown[] } | { ok: false; status: 400 | 415; error: string; problems?: EventProblem[] };

const utf8 = new TextDecoder('utf-8', { fatal: true });

function mediaType(contentType: string | undefined): { type: string; charset?: string } {
  const [type, ...params] = (contentType ?? '').split(';');
  const charset = params.map((p) => p.trim().toLowerCase()).find((p) => p.startsWith('charset='));
  return { type: type.trim().toLowerCase(), charset: charset?.slice('charset='.length).replace(/"/g, '') };
}

export function parseRequest(contentType: string | undefined, body: Uint8Array): ParseResult {
  const { type, charset } = mediaType(contentType);
  if (!(AcceptedContentTypes as readonly string[]).includes(type)) {
    return {
      ok: false,
      status: 415,
      error: `content type ${JSON.stringify(type || '(none)')} is not accepted; send one of ${AcceptedContentTypes.join(', ')}`,
    };
  }
  if (charset && charset !== 'utf-8' && charset !== 'utf8') {
    return { ok: false, status: 415, error: `charset ${JSON.stringify(charset)} is not accepted; send UTF-8` };
  }
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    return { ok: false, status: 400, error: 'the body is not valid UTF-8' };
  }
  // A search, not trim(): that would copy the whole body to find out.
  if (!/\S/.test(text)) return { ok: false, status: 400, error: 'the body is empty; send at least one event' };

  if (type === 'application/x-ndjson') {
    const candidates: unknown[] = [];
    const problems: EventProblem[] = [];
    const lines = text.split('\n');
    for (let line = 0; line < lines.length; line++) {
      if (lines[line].trim() === '') continue;
      try {
        candidates.push(JSON.parse(lines[line]));
      } catch (err) {
        problems.push({ index: candidates.length, attribute: '', problem: `line ${line + 1} is not valid JSON: ${(err as Error).message}` });
        candidates.push(undefined);
      }
    }
    if (problems.length > 0) return { ok: false, status: 400, error: 'invalid NDJSON', problems };
    return { ok: true, candidates };
  }

  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    return { ok: false, status: 400, error: `the body is not valid JSON: ${(err as Error).message}` };
  }
  if (type === 'application/cloudevents-batch+json') {
    if (!Array.isArray(parsed)) return { ok: false, status: 400, error: 'a application/cloudevents-batch+json body must be a JSON array of events' };
    if (parsed.length === 0) return { ok: false, status: 400, error: 'the batch is empty; send at least one event' };
    return { ok: true, candidates: parsed };
  }
  if (Array.isArray(parsed)) {
    return { ok: false, status: 400, error: `a ${type} body must be one event object; send arrays as application/cloudevents-batch+json` };
  }
  return { ok: true, candidates: [parsed] };
}
