import { typeMatches, typePatternProblem } from './type-pattern';

describe('typeMatches', () => {
  it('matches a type equal to the pattern and nothing else without wildcards', () => {
    expect(typeMatches('order.created', 'order.created')).toBe(true);
    expect(typeMatches('order.created', 'order.updated')).toBe(false);
    expect(typeMatches('order', 'order.created')).toBe(false);
    expect(typeMatches('order.created', 'order')).toBe(false);
  });

  it("lets '*' stand for exactly one token", () => {
    expect(typeMatches('order.*', 'order.created')).toBe(true);
    expect(typeMatches('order.*', 'order')).toBe(false);
    expect(typeMatches('order.*', 'order.line.added')).toBe(false);
    expect(typeMatches('*.created', 'invoice.created')).toBe(true);
    expect(typeMatches('order.*.added', 'order.line.added')).toBe(true);
    expect(typeMatches('order.*.added', 'order.line.removed')).toBe(false);
  });

  it("lets a last '>' stand for one or more tokens, never for none", () => {
    expect(typeMatches('order.>', 'order.created')).toBe(true);
    expect(typeMatches('order.>', 'order.line.added')).toBe(true);
    expect(typeMatches('order.>', 'order')).toBe(false);
    expect(typeMatches('order.>', 'invoice.created')).toBe(false);
    expect(typeMatches('>', 'anything.at.all')).toBe(true);
  });

  it("combines '*' and '>'", () => {
    expect(typeMatches('*.line.>', 'order.line.added.twice')).toBe(true);
    expect(typeMatches('*.line.>', 'order.head.added')).toBe(false);
  });

  it('compares whole tokens, not prefixes', () => {
    expect(typeMatches('order.*', 'orders.created')).toBe(false);
    expect(typeMatches('order.create', 'order.created')).toBe(false);
  });
});

describe('typePatternProblem', () => {
  it.each(['order.created', 'order.*', 'order.>', '*', '>', '*.line.>', 'Order_v2.created-at'])('finds nothing wrong with %j', (pattern) => {
    expect(typePatternProblem(pattern)).toBeUndefined();
  });

  it('refuses an empty pattern', () => {
    expect(typePatternProblem('')).toBe('must be a non-empty string');
  });

  it("refuses '>' anywhere but last", () => {
    expect(typePatternProblem('order.>.added')).toBe("'>' may only be the last token");
    expect(typePatternProblem('>.created')).toBe("'>' may only be the last token");
  });

  it.each([
    ['order..created', ''],
    ['order.cre ated', 'cre ated'],
    ['order.created*', 'created*'],
    ['order.', ''],
  ])('names the bad token of %j and what a token may hold', (pattern, token) => {
    expect(typePatternProblem(pattern)).toBe(`token '${token}' must be letters, digits, '_' or '-', or a wildcard '*' or '>'`);
  });
});
