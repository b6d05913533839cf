/**
 * The handlers this processor runs. Add yours here; a duplicate name stops
 * start-up.
 */
import type { AnyHandlerDefinition } from '@mesh/runtime';
import fraudScore from './fraud-score.handler';
import orders from './orders.handler';
import paymentsByCustomer from './rekey.handler';
import shippingQuote from './shipping-quote.handler';

export const handlers: readonly AnyHandlerDefinition[] = [orders, paymentsByCustomer, fraudScore, shippingQuote];
