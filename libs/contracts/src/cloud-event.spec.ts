import { MaxIdLength, MaxPartitionKeyLength, MaxSourceLength, MaxTypeLength, isCloudEvent, validateEvent, type EventProblem } from './cloud-event';
import { MaxDataDepth } from './cloud-event';

const valid = {
  specversion: '1.0',
  id: 'e-1',
  source: 'urn:test',
  type: 'order.created',
};

/** The problems of `valid` with some attributes replaced (undefined removes one). */
function problemsWith(changes: Record<string, unknown>, index?: number): EventProblem[] {
  const candidate: Record<string, unknown> = { ...valid, ...changes };
  for (const [k, v] of Object.entries(changes)) if (v === undefined) delete candidate[k];
  return validateEvent(candidate, index);
}

/** The one problem an event has; fails when it has none or several. */
function onlyProblem(changes: Record<string, unknown>): EventProblem {
  const problems = problemsWith(changes);
  expect(problems).toHaveLength(1);
  return problems[0];
}

describe('validateEvent', () => {
  it('accepts an event with every optional attribute well formed', () => {
    expect(
      problemsWith({
        time: '2026-01-31T12:00:00.123+01:00',
        subject: 'order-42',
        datacontenttype: 'application/json',
        dataschema: 'https://example.com/order.json',
        data: { amount: 3 },
        partitionkey: 'customer-7',
        traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
        tracestate: 'vendor=1',
        tenant: 'acme',
      }),
    ).toEqual([]);
    expect(isCloudEvent(valid)).toBe(true);
  });

  it.each([
    ['an array', [], 'array'],
    ['null', null, 'null'],
    ['a string', 'order.created', 'string'],
  ])('refuses %s as a whole event, naming what it got', (_, candidate, got) => {
    expect(validateEvent(candidate)).toEqual([{ index: 0, attribute: '', problem: `an event must be a JSON object, got ${got}` }]);
    expect(isCloudEvent(candidate)).toBe(false);
  });

  it('reports the position of the event in the request', () => {
    expect(problemsWith({ id: undefined }, 7)).toEqual([{ index: 7, attribute: 'id', problem: 'is required' }]);
  });

  it('reports every problem of an event, not only the first', () => {
    const problems = validateEvent({ specversion: '0.3', type: 'bad type' });
    expect(problems.map((p) => p.attribute)).toEqual(['specversion', 'id', 'source', 'type']);
  });

  describe('specversion', () => {
    it('is required and must be "1.0"', () => {
      expect(onlyProblem({ specversion: undefined })).toEqual({ index: 0, attribute: 'specversion', problem: 'is required and must be "1.0"' });
    });

    it('names the version it got when that is not "1.0"', () => {
      expect(onlyProblem({ specversion: '0.3' }).problem).toBe('must be "1.0", got "0.3"');
      expect(onlyProblem({ specversion: 1 }).problem).toBe('must be "1.0", got number');
    });
  });

  describe.each([
    ['id', MaxIdLength],
    ['source', MaxSourceLength],
  ])('%s', (attribute, max) => {
    it('is required', () => {
      expect(onlyProblem({ [attribute]: undefined })).toEqual({ index: 0, attribute, problem: 'is required' });
    });

    it('must be a string', () => {
      expect(onlyProblem({ [attribute]: 42 })).toEqual({ index: 0, attribute, problem: 'must be a string, got number' });
    });

    it('must not be empty', () => {
      expect(onlyProblem({ [attribute]: '' }).problem).toBe('must not be empty');
    });

    it(`may be ${max} characters long but not one more, and says how long it was`, () => {
      expect(problemsWith({ [attribute]: 'x'.repeat(max) })).toEqual([]);
      expect(onlyProblem({ [attribute]: 'x'.repeat(max + 1) }).problem).toBe(`must be at most ${max} characters, got ${max + 1}`);
    });

    it('must not contain control characters', () => {
      expect(onlyProblem({ [attribute]: 'a\nb' }).problem).toBe('must not contain control characters');
      expect(onlyProblem({ [attribute]: 'a\u007fb' }).problem).toBe('must not contain control characters');
    });
  });

  describe('type', () => {
    it('is required and must be a string', () => {
      expect(onlyProblem({ type: undefined })).toEqual({ index: 0, attribute: 'type', problem: 'is required' });
      expect(onlyProblem({ type: ['order'] }).problem).toBe('must be a string, got array');
    });

    it.each(['order', 'order.line.added', 'Order_v2.created-at'])('accepts dotted tokens such as %j', (type) => {
      expect(problemsWith({ type })).toEqual([]);
    });

    it.each(['order..created', '.order', 'order.', 'order created', 'order.*', 'order.>'])(
      'refuses %j, saying what a type looks like and what it got',
      (type) => {
        const p = onlyProblem({ type });
        expect(p.attribute).toBe('type');
        expect(p.problem).toContain(`such as "order.created"; got ${JSON.stringify(type)}`);
        expect(p.problem).toContain("letters, digits, '_' or '-'");
      },
    );

    it(`may be ${MaxTypeLength} characters long but not one more`, () => {
      expect(problemsWith({ type: 'a'.repeat(MaxTypeLength) })).toEqual([]);
      expect(onlyProblem({ type: 'a'.repeat(MaxTypeLength + 1) }).problem).toContain(`at most ${MaxTypeLength} characters`);
    });

    it('shortens a long value it quotes to 60 characters', () => {
      const p = onlyProblem({ type: 'a b'.repeat(100) });
      const quoted = p.problem.slice(p.problem.indexOf('got ') + 4);
      expect(quoted).toHaveLength(60);
      expect(quoted.endsWith('...')).toBe(true);
    });
  });

  describe('time', () => {
    it.each(['2026-01-31T12:00:00Z', '2026-01-31t12:00:00z', '2026-01-31T12:00:00.5-05:30'])('accepts the RFC 3339 timestamp %j', (time) => {
      expect(problemsWith({ time })).toEqual([]);
    });

    it.each([
      ['yesterday', '"yesterday"'],
      ['2026-01-31', '"2026-01-31"'],
      ['2026-01-31 12:00:00Z', '"2026-01-31 12:00:00Z"'],
      ['2026-13-01T00:00:00Z', '"2026-13-01T00:00:00Z"'],
      [1769860800000, 'number'],
    ])('refuses %j with an example of what is accepted', (time, shown) => {
      expect(onlyProblem({ time })).toEqual({
        index: 0,
        attribute: 'time',
        problem: `must be an RFC 3339 timestamp such as "2026-01-31T12:00:00Z", got ${shown}`,
      });
    });

    it('refuses a calendar date that does not exist', () => {
      // Date.parse rolls 30 February over to 2 March instead of failing.
      expect(onlyProblem({ time: '2026-02-30T00:00:00Z' }).attribute).toBe('time');
    });
  });

  it.each(['subject', 'datacontenttype', 'dataschema', 'data_base64', 'tracestate'])('refuses a %s that is not a string', (attribute) => {
    expect(onlyProblem({ [attribute]: 5 })).toEqual({ index: 0, attribute, problem: 'must be a string, got number' });
  });

  describe('partitionkey', () => {
    it('must be a non-empty string', () => {
      expect(onlyProblem({ partitionkey: '' })).toEqual({ index: 0, attribute: 'partitionkey', problem: 'must not be empty' });
      expect(onlyProblem({ partitionkey: 7 }).problem).toBe('must be a string, got number');
    });

    it(`may be ${MaxPartitionKeyLength} characters long but not one more`, () => {
      expect(problemsWith({ partitionkey: 'k'.repeat(MaxPartitionKeyLength) })).toEqual([]);
      expect(onlyProblem({ partitionkey: 'k'.repeat(MaxPartitionKeyLength + 1) }).problem).toBe(
        `must be at most ${MaxPartitionKeyLength} characters, got ${MaxPartitionKeyLength + 1}`,
      );
    });
  });

  it.each(['00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331', 'not-a-trace'])(
    'refuses the malformed traceparent %j with the expected shape',
    (traceparent) => {
      const p = onlyProblem({ traceparent });
      expect(p.attribute).toBe('traceparent');
      expect(p.problem).toBe(`must be a W3C traceparent such as "00-<32 hex>-<16 hex>-01", got ${JSON.stringify(traceparent)}`);
    },
  );

  it('refuses data and data_base64 together', () => {
    expect(onlyProblem({ data: {}, data_base64: 'AA==' })).toEqual({ index: 0, attribute: 'data_base64', problem: 'must not be present together with data' });
    expect(problemsWith({ data_base64: 'AA==' })).toEqual([]);
  });

  describe('extension attributes', () => {
    it('accepts string, number, boolean and null values', () => {
      expect(problemsWith({ tenant: 'acme', priority: 3, urgent: true, region: null })).toEqual([]);
    });

    it.each(['Tenant', 'tenant_id', 'a'.repeat(21)])('refuses the name %j, saying what names are allowed', (name) => {
      expect(onlyProblem({ [name]: 'x' })).toEqual({
        index: 0,
        attribute: name,
        problem: 'is not a valid extension attribute name: use 1 to 20 lowercase letters or digits',
      });
    });

    it('refuses object and array values', () => {
      expect(onlyProblem({ tenant: { id: 1 } }).problem).toBe('extension attributes must be a string, number or boolean, got object');
      expect(onlyProblem({ tenant: [1] }).problem).toBe('extension attributes must be a string, number or boolean, got array');
    });
  });
});

describe('validateEvent: nesting of data', () => {
  const base = { specversion: '1.0', id: 'e1', source: 's', type: 'order.created' };
  const nested = (depth: number) => {
    let v: unknown = 1;
    for (let i = 0; i < depth; i++) v = [v];
    return v;
  };

  it('accepts data nested as deep as the limit', () => {
    expect(validateEvent({ ...base, data: nested(MaxDataDepth) })).toEqual([]);
  });

  it('refuses data nested one level deeper, without overflowing the stack even at 100,000 levels', () => {
    const problem = { index: 0, attribute: 'data', problem: `must not nest arrays and objects deeper than ${MaxDataDepth} levels` };
    expect(validateEvent({ ...base, data: nested(MaxDataDepth + 1) })).toEqual([problem]);
    expect(validateEvent({ ...base, data: nested(100_000) })).toEqual([problem]);
  });
});
