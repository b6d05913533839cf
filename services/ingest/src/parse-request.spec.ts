import { parseRequest, type ParseResult } from './parse-request';

const body = (text: string) => Buffer.from(text, 'utf8');

const event = (id: string) => ({ specversion: '1.0', id, source: 'shop', type: 'order.created' });

function candidates(result: ParseResult): unknown[] {
  if (!result.ok) throw new Error(`expected the body to parse, got ${result.status}: ${result.error}`);
  return result.candidates;
}

function failure(result: ParseResult): Extract<ParseResult, { ok: false }> {
  if (result.ok) throw new Error(`expected the body to be rejected, got ${JSON.stringify(result.candidates)}`);
  return result;
}

describe('parseRequest', () => {
  describe('single events', () => {
    it('takes one event sent as application/cloudevents+json', () => {
      expect(candidates(parseRequest('application/cloudevents+json', body(JSON.stringify(event('1')))))).toEqual([event('1')]);
    });

    it('takes one event sent as application/json', () => {
      expect(candidates(parseRequest('application/json', body(JSON.stringify(event('1')))))).toEqual([event('1')]);
    });

    it('accepts an explicit UTF-8 charset and ignores the case of the media type', () => {
      expect(candidates(parseRequest('Application/JSON; charset="UTF-8"', body(JSON.stringify(event('1')))))).toEqual([event('1')]);
      expect(candidates(parseRequest('application/json; charset=utf8', body(JSON.stringify(event('1')))))).toEqual([event('1')]);
    });

    it('keeps non-ASCII text intact', () => {
      const e = { ...event('1'), data: { name: 'Zoë 🚀' } };
      expect(candidates(parseRequest('application/json', body(JSON.stringify(e))))).toEqual([e]);
    });

    it('rejects an array sent as a single event, pointing to the batch content type', () => {
      const f = failure(parseRequest('application/cloudevents+json', body(JSON.stringify([event('1')]))));
      expect(f.status).toBe(400);
      expect(f.error).toContain('application/cloudevents-batch+json');
    });

    it('rejects a body that is not JSON with 400', () => {
      const f = failure(parseRequest('application/json', body('{"id": ')));
      expect(f.status).toBe(400);
      expect(f.error).toMatch(/not valid JSON/);
    });
  });

  describe('batches', () => {
    it('takes every event of an application/cloudevents-batch+json array, in order', () => {
      const events = [event('1'), event('2'), event('3')];
      expect(candidates(parseRequest('application/cloudevents-batch+json', body(JSON.stringify(events))))).toEqual(events);
    });

    it('rejects an empty batch with 400', () => {
      const f = failure(parseRequest('application/cloudevents-batch+json', body('[]')));
      expect(f.status).toBe(400);
      expect(f.error).toMatch(/empty/);
    });

    it('rejects an object sent as a batch with 400', () => {
      const f = failure(parseRequest('application/cloudevents-batch+json', body(JSON.stringify(event('1')))));
      expect(f.status).toBe(400);
      expect(f.error).toMatch(/array/);
    });
  });

  describe('NDJSON', () => {
    it('takes one event per line, in order', () => {
      const text = [event('1'), event('2')].map((e) => JSON.stringify(e)).join('\n');
      expect(candidates(parseRequest('application/x-ndjson', body(text)))).toEqual([event('1'), event('2')]);
    });

    it('skips blank lines, CRLF line ends and a trailing newline', () => {
      const text = `\n${JSON.stringify(event('1'))}\r\n   \n\n${JSON.stringify(event('2'))}\n`;
      expect(candidates(parseRequest('application/x-ndjson', body(text)))).toEqual([event('1'), event('2')]);
    });

    it('reports a bad line with its 1-based line number and the index of the event it would have been', () => {
      const text = [JSON.stringify(event('1')), '', '{not json', JSON.stringify(event('3'))].join('\n');
      const f = failure(parseRequest('application/x-ndjson', body(text)));
      expect(f.status).toBe(400);
      expect(f.problems).toHaveLength(1);
      expect(f.problems![0].index).toBe(1);
      expect(f.problems![0].problem).toMatch(/^line 3 is not valid JSON/);
    });

    it('reports every bad line, not only the first', () => {
      const text = ['nope', JSON.stringify(event('1')), 'also nope'].join('\n');
      const f = failure(parseRequest('application/x-ndjson', body(text)));
      expect(f.problems!.map((p) => [p.index, p.problem.split(' is ')[0]])).toEqual([
        [0, 'line 1'],
        [2, 'line 3'],
      ]);
    });
  });

  describe('content type and encoding', () => {
    it.each([['text/plain'], ['application/xml'], ['application/cloudevents']])('rejects %s with 415 listing the accepted types', (type) => {
      const f = failure(parseRequest(type, body(JSON.stringify(event('1')))));
      expect(f.status).toBe(415);
      expect(f.error).toContain('application/cloudevents+json');
      expect(f.error).toContain('application/x-ndjson');
    });

    it('rejects a request without a content type with 415', () => {
      expect(failure(parseRequest(undefined, body(JSON.stringify(event('1'))))).status).toBe(415);
      expect(failure(parseRequest('', body(JSON.stringify(event('1'))))).status).toBe(415);
    });

    it('rejects a charset other than UTF-8 with 415 naming it', () => {
      const f = failure(parseRequest('application/json; charset=iso-8859-1', body(JSON.stringify(event('1')))));
      expect(f.status).toBe(415);
      expect(f.error).toContain('iso-8859-1');
    });

    it('rejects bytes that are not valid UTF-8 with 400', () => {
      const f = failure(parseRequest('application/json', Buffer.from([0xff, 0xfe])));
      expect(f.status).toBe(400);
      expect(f.error).toMatch(/UTF-8/);
    });

    it('rejects invalid UTF-8 inside an otherwise well-formed JSON body rather than replacing it', () => {
      const bytes = Buffer.concat([body('{"specversion":"1.0","id":"'), Buffer.from([0xc3, 0x28]), body('","source":"s","type":"t"}')]);
      expect(failure(parseRequest('application/json', bytes)).status).toBe(400);
    });

    it.each([['application/json'], ['application/cloudevents-batch+json'], ['application/x-ndjson']])('rejects an empty or blank %s body with 400', (type) => {
      for (const text of ['', '  \n\t ']) {
        const f = failure(parseRequest(type, body(text)));
        expect(f.status).toBe(400);
        expect(f.error).toMatch(/empty/);
      }
    });
  });
});
