import type { IncomingHttpHeaders } from 'node:http';
import { binaryModeEvent, isBinaryMode, structuredRequest } from './binary-mode';

const attributes: IncomingHttpHeaders = { 'ce-specversion': '1.0', 'ce-id': 'order-1', 'ce-source': 'shop', 'ce-type': 'order.created' };

/** The event a binary-mode request becomes, or the failure. */
function eventOf(headers: IncomingHttpHeaders, body = ''): unknown {
  const result = binaryModeEvent(headers, Buffer.from(body));
  if (!result.ok) throw new Error(`expected an event, got ${result.status}: ${result.error}`);
  expect(result.contentType).toBe('application/cloudevents+json');
  return JSON.parse(result.body.toString());
}

describe('isBinaryMode', () => {
  it('is a request with ce-specversion whose content type is not a structured one', () => {
    expect(isBinaryMode({ ...attributes, 'content-type': 'application/json' })).toBe(true);
    expect(isBinaryMode({ ...attributes })).toBe(true);
    expect(isBinaryMode({ 'content-type': 'application/json' })).toBe(false);
    // The structured content type wins over stray ce- headers.
    expect(isBinaryMode({ ...attributes, 'content-type': 'application/cloudevents+json' })).toBe(false);
    expect(isBinaryMode({ ...attributes, 'content-type': 'application/cloudevents-batch+json' })).toBe(false);
  });
});

describe('binaryModeEvent', () => {
  it('maps ce- headers to attributes, content-type to datacontenttype, and a JSON body to data', () => {
    const headers = {
      ...attributes,
      'ce-time': '2026-01-31T12:00:00Z',
      'ce-subject': 'o-1',
      'ce-partitionkey': 'customer-42',
      'ce-region': 'eu',
      'content-type': 'application/json; charset=utf-8',
    };
    expect(eventOf(headers, '{"orderId":"o-1","amount":25}')).toEqual({
      specversion: '1.0',
      id: 'order-1',
      source: 'shop',
      type: 'order.created',
      time: '2026-01-31T12:00:00Z',
      subject: 'o-1',
      partitionkey: 'customer-42',
      region: 'eu',
      datacontenttype: 'application/json; charset=utf-8',
      data: { orderId: 'o-1', amount: 25 },
    });
  });

  it('parses any +json content type, and a body without content type, as JSON', () => {
    expect(eventOf({ ...attributes, 'content-type': 'application/vnd.shop+json' }, '[1,2]')).toMatchObject({
      data: [1, 2],
      datacontenttype: 'application/vnd.shop+json',
    });
    const bare = eventOf({ ...attributes }, '{"amount":3}') as Record<string, unknown>;
    expect(bare.data).toEqual({ amount: 3 });
    expect(bare).not.toHaveProperty('datacontenttype');
  });

  it('keeps a text body as a string and any other body as data_base64', () => {
    expect(eventOf({ ...attributes, 'content-type': 'text/plain' }, 'hello, world')).toMatchObject({ data: 'hello, world', datacontenttype: 'text/plain' });
    const bytes = Buffer.from([0, 1, 2, 250, 255]);
    const result = binaryModeEvent({ ...attributes, 'content-type': 'application/octet-stream' }, bytes);
    expect(result.ok && JSON.parse(result.body.toString())).toMatchObject({
      data_base64: bytes.toString('base64'),
      datacontenttype: 'application/octet-stream',
    });
  });

  it('carries no data for an empty body', () => {
    expect(eventOf({ ...attributes, 'content-type': 'application/json' })).not.toHaveProperty('data');
  });

  it('percent-decodes header values, leaving a stray % as it is', () => {
    expect(eventOf({ ...attributes, 'ce-subject': 'caf%C3%A9%20au%20lait', 'ce-note': '50%off' })).toMatchObject({ subject: 'café au lait', note: '50%off' });
  });

  it('refuses a JSON content type whose body is not JSON, saying which', () => {
    expect(binaryModeEvent({ ...attributes, 'content-type': 'application/json' }, Buffer.from('{oops'))).toMatchObject({
      ok: false,
      status: 400,
      error: expect.stringMatching(/^the body is not valid JSON, as its content type "application\/json" says it is: /),
    });
  });

  it('refuses a text body in another charset than UTF-8', () => {
    expect(binaryModeEvent({ ...attributes, 'content-type': 'text/plain; charset=latin1' }, Buffer.from('x'))).toEqual({
      ok: false,
      status: 415,
      error: 'charset "latin1" is not accepted; send UTF-8',
    });
  });

  it('refuses data or datacontenttype sent as headers, naming where they belong', () => {
    expect(binaryModeEvent({ ...attributes, 'ce-data': '{}', 'ce-datacontenttype': 'text/plain' }, Buffer.alloc(0))).toEqual({
      ok: false,
      status: 400,
      error: '2 problem(s) in the request; nothing was stored',
      problems: [
        { index: 0, attribute: 'data', problem: 'is not sent as the header ce-data in binary mode; it is the body' },
        { index: 0, attribute: 'datacontenttype', problem: 'is not sent as the header ce-datacontenttype in binary mode; it is the Content-Type header' },
      ],
    });
  });
});

describe('structuredRequest', () => {
  it('passes a structured or batch request on as it came', () => {
    const body = Buffer.from('[]');
    expect(structuredRequest({ 'content-type': 'application/cloudevents-batch+json' }, body)).toEqual({
      ok: true,
      contentType: 'application/cloudevents-batch+json',
      body,
    });
  });

  it('answers a binary-mode request that carries no readable event with its problem', () => {
    expect(structuredRequest({ ...attributes, 'content-type': 'application/json' }, Buffer.from('nope'))).toMatchObject({
      ok: false,
      answer: { status: 400, body: { error: expect.stringMatching(/^the body is not valid JSON/) } },
    });
  });
});
