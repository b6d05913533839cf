/**
 * The handlers this processor runs. Add yours here; a duplicate name stops
 * start-up.
 */
import type { AnyHandlerDefinition } from '@mesh/runtime';
import orders from './orders.handler';
import paymentsByCustomer from './rekey.handler';

export const handlers: readonly AnyHandlerDefinition[] = [orders, paymentsByCustomer];
