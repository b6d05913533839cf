/**
 * Example handler: re-keys payments by customer, as Kafka Streams'
 * repartition does. A payment arrives keyed by its order; the event it emits
 * carries `partitionkey` = the customer, so it lands in the customer's
 * partition and the aggregator totals payments per customer.
 */
import { defineHandler, fields } from '@mesh/runtime';

export default defineHandler({
  name: 'payments-by-customer',
  types: ['payment.received'],
  description: 'Moves payments to the partition of their customer.',
  schema: fields({ customerId: 'string', amount: 'number' }),
  handle(event) {
    return {
      type: 'payment.by-customer',
      partitionkey: event.data!.customerId,
      data: event.data,
    };
  },
});
