import { HandlerStateStore, keyStateOver, MaxStateBytes, StateNotJsonError, StateTooLargeError } from './handler-state';

const store = () => HandlerStateStore.empty({} as never, 'processor.p00.state.');

describe('handler state in memory', () => {
  it('buffers an attempt write: the attempt reads it back, the store only once it is applied', () => {
    const s = store();
    const a = s.attempt('h', 'k');
    a.state.set({ n: 1 });
    expect(a.state.get()).toEqual({ n: 1 });
    expect(s.get('h', 'k')).toBeUndefined();
    s.apply('h', 'k', a.write()!, { seq: 5, index: 1 });
    expect(s.get('h', 'k')).toEqual({ n: 1 });
    expect(s.changed).toBe(true);
    // Another handler, another key: other values.
    expect(s.get('other', 'k')).toBeUndefined();
    expect(s.get('h', 'k2')).toBeUndefined();
  });

  it('says an event at or before the key position was applied, and one after it was not', () => {
    const s = store();
    s.apply('h', 'k', { json: '1' }, { seq: 5, index: 1 });
    expect(s.applied('h', 'k', { seq: 4, index: 9 })).toBe(true);
    expect(s.applied('h', 'k', { seq: 5, index: 0 })).toBe(true);
    expect(s.applied('h', 'k', { seq: 5, index: 1 })).toBe(true);
    expect(s.applied('h', 'k', { seq: 5, index: 2 })).toBe(false);
    expect(s.applied('h', 'k', { seq: 6, index: 0 })).toBe(false);
    expect(s.applied('h', 'other', { seq: 1, index: 0 })).toBe(false);
  });

  it('gives a copy: changing what get returned changes nothing until set', () => {
    const s = store();
    s.apply('h', 'k', { json: '{"list":[1]}' }, { seq: 1, index: 0 });
    const value = s.attempt('h', 'k').state.get<{ list: number[] }>()!;
    value.list.push(2);
    expect(s.get('h', 'k')).toEqual({ list: [1] });
  });

  it('deletes: get gives undefined again, and the delete is a write with its position', () => {
    const s = store();
    s.apply('h', 'k', { json: '1' }, { seq: 1, index: 0 });
    const a = s.attempt('h', 'k');
    a.state.delete();
    expect(a.state.get()).toBeUndefined();
    s.apply('h', 'k', a.write()!, { seq: 2, index: 0 });
    expect(s.get('h', 'k')).toBeUndefined();
    expect(s.applied('h', 'k', { seq: 2, index: 0 })).toBe(true);
  });

  it('refuses a value that is not JSON or is too large, naming the handler, the key and the limit', () => {
    const { state } = keyStateOver('h', 'customer-7', () => undefined);
    expect(() => state.set(() => 1)).toThrow(StateNotJsonError);
    expect(() => state.set(undefined)).toThrow("state of handler 'h' must be a JSON value (object, array, string, number, boolean or null), got undefined");
    expect(() => state.set(10n)).toThrow(/got bigint: Do not know how to serialize a BigInt/);
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    expect(() => state.set(cycle)).toThrow(StateNotJsonError);
    expect(() => state.set('x'.repeat(MaxStateBytes))).toThrow(new StateTooLargeError('h', 'customer-7', MaxStateBytes + 2));
    expect(() => state.set('x'.repeat(MaxStateBytes - 2))).not.toThrow();
  });
});
