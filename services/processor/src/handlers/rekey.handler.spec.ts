import type { CloudEvent } from '@mesh/contracts';
import { createLogger, handlerTakes, runHandler, type AnyHandlerDefinition, type HandlerRun } from '@mesh/runtime';
import paymentsByCustomer from './rekey.handler';

function event(type: string, data: unknown, extra: Partial<CloudEvent> = {}): CloudEvent {
  return { specversion: '1.0', id: 'e-1', source: 'shop', type, time: '2026-02-01T10:00:00Z', data, ...extra };
}

const options = { partition: 0, log: createLogger({}, 'error', () => {}), sleep: async () => {} };

function run(def: AnyHandlerDefinition, e: CloudEvent): Promise<HandlerRun> {
  return runHandler(def, e, options);
}

function outputsOf(r: HandlerRun): CloudEvent[] {
  if (!r.ok) throw new Error(`expected success, got ${String(r.error)}`);
  return r.outputs;
}

describe('payments-by-customer handler', () => {
  it('takes payment.received only', () => {
    expect(handlerTakes(paymentsByCustomer, 'payment.received')).toBe(true);
    expect(handlerTakes(paymentsByCustomer, 'order.created')).toBe(false);
  });

  it('re-keys a payment by its customer, keeping its data', async () => {
    const data = { customerId: 'customer-42', amount: 99.5 };
    const [out] = outputsOf(await run(paymentsByCustomer, event('payment.received', data, { partitionkey: 'order-7' })));
    expect(out.type).toBe('payment.by-customer');
    expect(out.partitionkey).toBe('customer-42');
    expect(out.data).toEqual(data);
    expect(out.time).toBe('2026-02-01T10:00:00Z');
  });

  it('dead-letters at once a payment without a customer', async () => {
    const r = await run(paymentsByCustomer, event('payment.received', { amount: 1 }));
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.attempts).toBe(1);
    expect((r.error as Error).message).toMatch(/data\.customerId is required/);
  });
});
