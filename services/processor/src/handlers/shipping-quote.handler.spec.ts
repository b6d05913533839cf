import { createHandlerHarness } from '@mesh/testing';
import shippingQuote from './shipping-quote.handler';

const cart = (id: string, items: number, country: string) => ({ type: 'cart.checked-out', id, partitionkey: `cart-${id}`, data: { items, country } });

describe('shipping-quote stream handler (through the test kit)', () => {
  it('quotes carts with items, enriched with the rate looked up, and drops empty carts', async () => {
    const mesh = createHandlerHarness({ handlers: [shippingQuote] });
    await mesh.send([cart('a', 2, 'DE'), cart('b', 0, 'DE'), cart('c', 1, 'US')]);
    expect(mesh.emitted('shipping.quoted').map((e) => [e.partitionkey, e.data])).toEqual([
      ['cart-a', { country: 'DE', items: 2, rate: 4.9 }],
      ['cart-c', { country: 'US', items: 1, rate: 14.5 }],
    ]);
    // Ids derive from the input event, so a replay emits the same ones.
    expect(mesh.emitted('shipping.quoted')[0].id).toBe('a:shipping-quote:0');
  });

  it('dead-letters only the cart whose lookup failed', async () => {
    const mesh = createHandlerHarness({ handlers: [shippingQuote] });
    await mesh.send([cart('a', 2, 'XX'), cart('b', 3, 'FR')]);
    expect(mesh.emitted().map((e) => e.partitionkey)).toEqual(['cart-b']);
    const [letter] = mesh.deadLetters();
    expect(letter.event.id).toBe('a');
    expect(letter.headers['Mesh-Error']).toBe('no shipping rate for country "XX"; known: DE, FR, US');
  });
});
