import { registry } from '@mesh/runtime';
import { handlers } from './index';

describe('handlers/index', () => {
  it('lists both example handlers under unique names', () => {
    expect([...registry('handler', handlers).keys()].sort()).toEqual(['orders', 'payments-by-customer']);
  });
});
