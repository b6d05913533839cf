import { eligibleMembers } from './declared-handlers';

describe('eligibleMembers', () => {
  const advertised = new Map<string, Record<string, unknown>>([
    ['old', { handlers: ['orders'] }],
    ['new', { handlers: ['extra', 'orders'] }],
    ['odd', { instance: 'odd' }],
  ]);

  it('keeps the members that host every declared handler, as in a rolling update that adds one', () => {
    expect(eligibleMembers(new Set(['orders', 'extra']), ['old', 'new'], advertised)).toEqual(['new']);
  });

  it('keeps every member while all of them host what is declared', () => {
    expect(eligibleMembers(new Set(['orders']), ['old', 'new'], advertised)).toEqual(['old', 'new']);
    expect(eligibleMembers(new Set(), ['old', 'new'], advertised)).toEqual(['old', 'new']);
  });

  it('counts a member not heard from yet, or without a list, as hosting everything', () => {
    expect(eligibleMembers(new Set(['orders', 'extra']), ['old', 'unseen', 'odd'], advertised)).toEqual(['unseen', 'odd']);
  });

  it('is empty when no live member hosts them all (the caller then assigns to every member)', () => {
    expect(eligibleMembers(new Set(['orders', 'gone']), ['old', 'new'], advertised)).toEqual([]);
  });
});
