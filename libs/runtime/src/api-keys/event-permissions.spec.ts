import { refusedEvents } from './event-permissions';

const events = [
  { source: 'shop', type: 'order.created' },
  { source: 'crm', type: 'order.created' },
  { source: 'shop', type: 'user.signed-up' },
];

describe('refusedEvents', () => {
  it('refuses nothing for a key without restrictions', () => {
    expect(refusedEvents({}, events)).toEqual([]);
  });

  it('lists by index the events whose source or type the key does not allow', () => {
    expect(refusedEvents({ sources: ['shop'] }, events)).toEqual([{ index: 1, source: 'crm', type: 'order.created' }]);
    expect(refusedEvents({ types: ['order.*'] }, events)).toEqual([{ index: 2, source: 'shop', type: 'user.signed-up' }]);
    expect(refusedEvents({ sources: ['shop'], types: ['order.>'] }, events).map((r) => r.index)).toEqual([1, 2]);
  });
});
