/**
 * Example stream handler: an RxJS operator over each event. Drops quotes
 * for an empty cart, then enriches the rest with an async lookup (here a
 * rate table; a real one would call a service), as `mergeMap` does.
 *
 * Takes `cart.checked-out` with data `{ items, country }` and emits
 * `shipping.quoted` with the rate. An unknown country is a permanent
 * failure: the event is dead-lettered at once.
 */
import { defineStreamHandler, fields, PermanentError } from '@mesh/runtime';
import { filter, map, mergeMap } from 'rxjs';

const Rates: Record<string, number> = { DE: 4.9, FR: 5.9, US: 14.5 };

/** Stands for a call to a rate service: async, and it completes. */
async function lookUpRate(country: string): Promise<number> {
  const rate = Rates[country];
  if (rate === undefined) throw new PermanentError(`no shipping rate for country ${JSON.stringify(country)}; known: ${Object.keys(Rates).join(', ')}`);
  return rate;
}

export default defineStreamHandler({
  name: 'shipping-quote',
  types: ['cart.checked-out'],
  description: 'Quotes shipping for carts with items (an RxJS stream handler).',
  schema: fields({ items: 'number', country: 'string' }),
  pipe: (events$) =>
    events$.pipe(
      filter((event) => event.data!.items > 0),
      mergeMap(async (event) => ({ event, rate: await lookUpRate(event.data!.country) })),
      map(({ event, rate }) => ({ type: 'shipping.quoted', data: { country: event.data!.country, items: event.data!.items, rate } })),
    ),
});
