import { defineAggregation, type AggregationDefinition, type WindowSpec } from './aggregation';
import { DefinitionError } from './errors';

const base: AggregationDefinition<{ count: number }> = {
  name: 'orders-per-minute',
  window: { kind: 'tumbling', sizeMs: 60_000 },
  init: () => ({ count: 0 }),
  add: (acc) => ({ count: acc.count + 1 }),
};
const define = (over: Partial<AggregationDefinition<{ count: number }>>) => defineAggregation({ ...base, ...over });

describe('defineAggregation', () => {
  it('gives back well-formed tumbling and hopping definitions unchanged', () => {
    expect(defineAggregation(base)).toBe(base);
    const hopping = { ...base, window: { kind: 'hopping', sizeMs: 60_000, hopMs: 60_000 } as WindowSpec, types: ['order.*'] };
    expect(defineAggregation(hopping)).toBe(hopping);
  });

  it('refuses a bad name, naming the aggregation', () => {
    expect(() => define({ name: 'Orders Per Minute' })).toThrow(DefinitionError);
    expect(() => define({ name: 'Orders Per Minute' })).toThrow("aggregation 'Orders Per Minute': name must be");
  });

  it('refuses a window kind other than tumbling, hopping or session', () => {
    expect(() => define({ window: { kind: 'sliding', sizeMs: 1000 } as unknown as WindowSpec })).toThrow(
      `aggregation 'orders-per-minute': window.kind must be 'tumbling', 'hopping' or 'session', got "sliding"`,
    );
    expect(() => define({ window: undefined as unknown as WindowSpec })).toThrow(/window.kind must be/);
  });

  it.each([0, -1000, Number.NaN])('refuses a window size of %d ms', (sizeMs) => {
    expect(() => define({ window: { kind: 'tumbling', sizeMs } })).toThrow('window.sizeMs must be a positive number of milliseconds');
  });

  it.each([0, -1, 60_001, Number.NaN])('refuses a hop of %d ms in a 60 s window', (hopMs) => {
    expect(() => define({ window: { kind: 'hopping', sizeMs: 60_000, hopMs } })).toThrow('window.hopMs must be positive and at most window.sizeMs');
  });

  it('accepts a session window with a positive gap and a merge', () => {
    const session = {
      ...base,
      window: { kind: 'session', gapMs: 30_000 } as WindowSpec,
      merge: (a: { count: number }, b: { count: number }) => ({ count: a.count + b.count }),
    };
    expect(defineAggregation(session)).toBe(session);
  });

  it.each([0, -1, Number.NaN])('refuses a session gap of %d ms, quoting it', (gapMs) => {
    const merge = (a: { count: number }) => a;
    expect(() => define({ window: { kind: 'session', gapMs }, merge })).toThrow(
      `window.gapMs must be a positive number of milliseconds, got ${JSON.stringify(gapMs)}`,
    );
  });

  it('refuses a session window without merge, which a bridging late event needs', () => {
    expect(() => define({ window: { kind: 'session', gapMs: 1000 } })).toThrow(
      "aggregation 'orders-per-minute': session windows need merge(a, b) to combine two sessions a late event bridges",
    );
  });

  it('refuses a malformed type pattern, quoting it', () => {
    expect(() => define({ types: ['order.*', '>.created'] })).toThrow(
      `aggregation 'orders-per-minute': type pattern ">.created" '>' may only be the last token`,
    );
  });

  it('accepts a definition without types, which takes every event', () => {
    expect(() => define({ types: undefined })).not.toThrow();
  });
});
