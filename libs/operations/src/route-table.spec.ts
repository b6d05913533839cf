import { InvalidRequestError } from './errors';
import { checkRuleName, validateRule } from './route-table';

describe('validateRule', () => {
  it('accepts a rule the router accepts and returns it as the router reads it', () => {
    expect(
      validateRule('orders-canary', {
        match: 'order.*',
        to: [
          { handler: 'orders', weight: 9 },
          { handler: 'orders-v2', weight: 1 },
        ],
      }),
    ).toEqual({
      name: 'orders-canary',
      match: 'order.*',
      where: undefined,
      priority: 0,
      to: [
        { handler: 'orders', weight: 9 },
        { handler: 'orders-v2', weight: 1 },
      ],
      drop: false,
    });
  });

  it('refuses a rule the router would ignore, naming every problem', () => {
    expect(() => validateRule('bad', { match: 7, priority: 'high' })).toThrow(
      new InvalidRequestError(
        `rule 'bad' is refused and nothing was stored: match must be an event type pattern such as "order.*"; priority must be a number; ` +
          'to must list handler names, or {"handler", "weight"} objects; or set "drop": true',
      ),
    );
  });

  it('refuses a name that is not one KV key token', () => {
    expect(() => checkRuleName('a.b')).toThrow(InvalidRequestError);
    expect(() => validateRule('a b', { match: 'x', to: ['y'] })).toThrow("invalid rule name 'a b'; use 1 to 64 letters, digits, '_' or '-'");
  });
});
