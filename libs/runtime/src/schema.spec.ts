import { fields } from './schema';

describe('fields', () => {
  const order = fields({ orderId: 'string', amount: 'number', quantity: 'integer', paid: 'boolean', note: 'string?', lines: 'array?', meta: 'object?' });

  it('accepts data with every required field of the right kind', () => {
    expect(order.problems({ orderId: 'o-1', amount: 9.5, quantity: 2, paid: false })).toEqual([]);
  });

  it('accepts optional fields of the right kind', () => {
    expect(order.problems({ orderId: 'o-1', amount: 9, quantity: 2, paid: true, note: '', lines: [], meta: {} })).toEqual([]);
  });

  it('names each missing required field and its kind', () => {
    expect(order.problems({ orderId: 'o-1' })).toEqual([
      'data.amount is required (number)',
      'data.quantity is required (integer)',
      'data.paid is required (boolean)',
    ]);
  });

  it('names a field of the wrong kind and the kind it got', () => {
    expect(order.problems({ orderId: 7, amount: '9', quantity: 2, paid: 'yes' })).toEqual([
      'data.orderId must be a string, got integer',
      'data.amount must be a number, got string',
      'data.paid must be a boolean, got string',
    ]);
  });

  it('checks optional fields that are present', () => {
    expect(order.problems({ orderId: 'o-1', amount: 1, quantity: 1, paid: true, note: 5 })).toEqual(['data.note must be a string, got integer']);
  });

  it('takes a whole number as a number, but a fraction not as an integer', () => {
    expect(order.problems({ orderId: 'o-1', amount: 3, quantity: 2.5, paid: true })).toEqual(['data.quantity must be an integer, got number']);
  });

  it('refuses a number that is not finite', () => {
    expect(fields({ amount: 'number' }).problems({ amount: Number.POSITIVE_INFINITY })).toHaveLength(1);
  });

  it('tells an array from an object, and null from both', () => {
    const s = fields({ list: 'array', map: 'object' });
    expect(s.problems({ list: [], map: {} })).toEqual([]);
    const [list, map] = s.problems({ list: {}, map: [] });
    expect(list).toMatch(/^data\.list must be an? array, got object$/);
    expect(map).toMatch(/^data\.map must be an? object, got array$/);
    expect(s.problems({ list: null, map: null }).map((p) => p.endsWith('got null'))).toEqual([true, true]);
  });

  it('writes "an" before a kind that starts with a vowel', () => {
    const s = fields({ list: 'array', map: 'object', count: 'integer' });
    expect(s.problems({ list: 1.5, map: 1.5, count: 1.5 })).toEqual([
      'data.list must be an array, got number',
      'data.map must be an object, got number',
      'data.count must be an integer, got number',
    ]);
  });

  it.each([
    [null, 'null'],
    [[1], 'array'],
    ['text', 'string'],
    [undefined, 'undefined'],
  ])('refuses data that is not an object (%j)', (data, kind) => {
    expect(order.problems(data)).toEqual([`data must be a JSON object, got ${kind}`]);
  });

  it('looks only at fields of the data itself, not at those it inherits', () => {
    expect(fields({ constructor: 'string' as const, toString: 'string?' as const }).problems({})).toEqual(['data.constructor is required (string)']);
  });
});
