import type { CloudEvent } from '@mesh/contracts';
import { createLogger, handlerTakes, PermanentError, runHandler, type AnyHandlerDefinition, type HandlerRun } from '@mesh/runtime';
import orders from './orders.handler';

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

describe('orders handler', () => {
  it('takes order.created only', () => {
    expect(handlerTakes(orders, 'order.created')).toBe(true);
    expect(handlerTakes(orders, 'order.cancelled')).toBe(false);
  });

  it('emits order.validated with the amount in cents and the given currency', async () => {
    const [out] = outputsOf(await run(orders, event('order.created', { orderId: 'o-1', amount: 12.34, currency: 'USD' })));
    expect(out.type).toBe('order.validated');
    expect(out.data).toEqual({ orderId: 'o-1', amount: 12.34, currency: 'USD', amountCents: 1234 });
  });

  it('defaults the currency to EUR', async () => {
    const [out] = outputsOf(await run(orders, event('order.created', { orderId: 'o-1', amount: 10 })));
    expect(out.data).toEqual({ orderId: 'o-1', amount: 10, currency: 'EUR', amountCents: 1000 });
  });

  it('rounds the cents of an amount that binary floating point cannot hold exactly', async () => {
    // 0.29 * 100 is 28.999999999999996 in floating point; truncating would give 28.
    const [out] = outputsOf(await run(orders, event('order.created', { orderId: 'o-1', amount: 0.29 })));
    expect((out.data as { amountCents: number }).amountCents).toBe(29);
  });

  it('leaves the input event untouched, so a retry sees the same data', async () => {
    const data = { orderId: 'o-1', amount: 10 };
    await run(orders, event('order.created', data));
    expect(data).toEqual({ orderId: 'o-1', amount: 10 });
  });

  it('accepts a zero amount', async () => {
    const [out] = outputsOf(await run(orders, event('order.created', { orderId: 'o-1', amount: 0 })));
    expect((out.data as { amountCents: number }).amountCents).toBe(0);
  });

  it('dead-letters at once an order with a negative amount', async () => {
    const r = await run(orders, event('order.created', { orderId: 'o-9', amount: -1 }));
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.attempts).toBe(1);
    expect(r.error).toBeInstanceOf(PermanentError);
    expect((r.error as Error).message).toContain('o-9');
  });

  it('dead-letters at once an order whose data fails the schema', async () => {
    const r = await run(orders, event('order.created', { orderId: 'o-1', amount: '10' }));
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error).toBeInstanceOf(PermanentError);
    expect((r.error as Error).message).toMatch(/data\.amount must be a number/);
  });
});
