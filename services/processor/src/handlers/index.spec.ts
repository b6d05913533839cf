import { registry } from '@mesh/runtime';
import { handlers } from './index';

describe('handlers/index', () => {
  it('lists the example handlers, and every handler under a unique name', () => {
    // registry() throws on a duplicate name, as start-up does.
    const names = [...registry('handler', handlers).keys()];
    expect(names).toEqual(expect.arrayContaining(['orders', 'payments-by-customer', 'fraud-score', 'shipping-quote']));
    expect(names).toHaveLength(handlers.length);
  });
});
