import type { CloudEvent } from '@mesh/contracts';
import * as v from 'valibot';
import { z } from 'zod';
import { DefinitionError, PermanentError } from '../errors';
import { defineHandler } from '../handler';
import { createLogger } from '../logger';
import { runHandler, type HandlerRun } from './run-handler';

const options = { partition: 0, log: createLogger({}, 'error', () => undefined), sleep: async () => undefined };

function order(data: unknown): CloudEvent {
  return { specversion: '1.0', id: 'o-1', source: 'shop', type: 'order.created', partitionkey: 'c-1', time: '2026-01-01T00:00:00Z', data };
}

function rejection(run: HandlerRun): string {
  if (run.ok) throw new Error('expected the run to fail');
  expect(run.error).toBeInstanceOf(PermanentError);
  expect(run.attempts).toBe(1);
  return (run.error as Error).message;
}

describe('handler data schemas from Standard Schema libraries', () => {
  const zodOrder = z.object({ orderId: z.string(), amount: z.number().nonnegative(), lines: z.array(z.object({ sku: z.string() })).default([]) });

  it('zod: dead-letters data that fails, naming each field and the handler, without calling it', async () => {
    const handle = jest.fn(() => undefined);
    const def = defineHandler({ name: 'zod-orders', types: ['order.*'], schema: zodOrder, handle });
    const message = rejection(await runHandler(def, order({ amount: -1, lines: [{ sku: 7 }] }), options));
    expect(handle).not.toHaveBeenCalled();
    expect(message).toMatch(/schema of 'zod-orders'/);
    expect(message).toMatch(/data\.orderId: /);
    expect(message).toMatch(/data\.amount: /);
    expect(message).toMatch(/data\.lines\[0\]\.sku: /);
  });

  it("zod: the handler gets the schema's output (defaults filled), typed", async () => {
    const seen: unknown[] = [];
    const def = defineHandler({
      name: 'zod-orders',
      types: ['order.*'],
      schema: zodOrder,
      handle: (event) => {
        // Typed by the schema: lines is an array here even when the event had none.
        seen.push(event.data.lines.length);
        return { type: 'order.seen', data: { amount: event.data.amount } };
      },
    });
    const run = await runHandler(def, order({ orderId: 'o-1', amount: 5 }), options);
    expect(run.ok).toBe(true);
    expect(seen).toEqual([0]);
    expect(run.ok && run.outputs.map((e) => e.data)).toEqual([{ amount: 5 }]);
  });

  it('zod: an asynchronous schema is awaited', async () => {
    const known = new Set(['c-1']);
    const schema = z.object({ customer: z.string().refine(async (c) => known.has(c), 'unknown customer') });
    const def = defineHandler({ name: 'async-check', types: ['order.*'], schema, handle: () => ({ type: 'order.ok' }) });
    expect((await runHandler(def, order({ customer: 'c-1' }), options)).ok).toBe(true);
    expect(rejection(await runHandler(def, order({ customer: 'c-2' }), options))).toMatch(/data\.customer: unknown customer/);
  });

  it('valibot: rejects and accepts like zod', async () => {
    const schema = v.object({ orderId: v.string(), amount: v.pipe(v.number(), v.minValue(0)) });
    const def = defineHandler({ name: 'valibot-orders', types: ['order.*'], schema, handle: (e) => ({ type: 'order.seen', data: { id: e.data.orderId } }) });
    expect(rejection(await runHandler(def, order({ orderId: 3, amount: 1 }), options))).toMatch(/data\.orderId: /);
    const run = await runHandler(def, order({ orderId: 'o-9', amount: 1 }), options);
    expect(run.ok && run.outputs.map((e) => e.data)).toEqual([{ id: 'o-9' }]);
  });

  it('a schema that is neither fields() nor a Standard Schema fails at definition, saying what is accepted', () => {
    expect(() => defineHandler({ name: 'bad', types: ['order.*'], schema: { parse: () => true } as never, handle: () => undefined })).toThrow(DefinitionError);
    expect(() => defineHandler({ name: 'bad', types: ['order.*'], schema: { parse: () => true } as never, handle: () => undefined })).toThrow(
      /fields\(\{\.\.\.\}\) or a Standard Schema/,
    );
  });
});
