/**
 * Example handler: validates an order and enriches it.
 * Copy this file to add your own, then list it in `handlers/index.ts`.
 *
 * Takes `order.created` with data `{ orderId, amount, currency? }` and emits
 * `order.validated` with the amount in cents and a currency. An order with a
 * negative amount can never be valid: PermanentError dead-letters it at once.
 */
import { defineHandler, fields, PermanentError } from '@mesh/runtime';

const schema = fields({ orderId: 'string', amount: 'number', currency: 'string?' });

export default defineHandler({
  name: 'orders',
  types: ['order.created'],
  description: 'Validates orders and adds the amount in cents.',
  schema,
  retry: { maxAttempts: 5, initialDelayMs: 200 },
  handle(event) {
    const order = event.data!;
    if (order.amount < 0) throw new PermanentError(`order ${order.orderId} has a negative amount ${order.amount}`);
    return {
      type: 'order.validated',
      data: {
        ...order,
        currency: order.currency ?? 'EUR',
        amountCents: Math.round(order.amount * 100),
      },
    };
  },
});
