import { validateEvent, type CloudEvent } from '@mesh/contracts';
import { PermanentError, RetryableError } from '../errors';
import { defineHandler, type EmittedEvent, type HandlerOutput } from '../handler';
import { createLogger } from '../logger';
import type { RetryPolicy } from '../retry';
import { fields } from '../schema';
import { completeEmitted, runHandler, type HandlerRun, type RunOptions } from './run-handler';

const TRACEPARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

const input: CloudEvent = {
  specversion: '1.0',
  id: 'order-7',
  source: 'shop',
  type: 'order.created',
  time: '2026-02-01T10:00:00Z',
  subject: 'order-7',
  partitionkey: 'customer-3',
  traceparent: TRACEPARENT,
  data: { amount: 5 },
};

const exactRetry: Partial<RetryPolicy> = { maxAttempts: 4, initialDelayMs: 100, multiplier: 3, maxDelayMs: 1_000, jitter: 0 };

/** Run options whose `sleep` only records the delays it was asked for. */
function options(): RunOptions & { delays: number[] } {
  const delays: number[] = [];
  return {
    partition: 3,
    log: createLogger({}, 'error', () => {}),
    delays,
    sleep: async (ms) => {
      delays.push(ms);
    },
  };
}

function handlerThatRuns(handle: (event: CloudEvent, attempt: number) => HandlerOutput | Promise<HandlerOutput>, retry = exactRetry) {
  const calls: number[] = [];
  const def = defineHandler({
    name: 'test-handler',
    types: ['order.*'],
    retry,
    handle: (event, ctx) => {
      calls.push(ctx.attempt);
      return handle(event, ctx.attempt);
    },
  });
  return { def, calls };
}

function failed(run: HandlerRun): Extract<HandlerRun, { ok: false }> {
  if (run.ok) throw new Error(`expected the run to fail, it emitted ${JSON.stringify(run.outputs)}`);
  return run;
}

function succeeded(run: HandlerRun): Extract<HandlerRun, { ok: true }> {
  if (!run.ok) throw new Error(`expected the run to succeed, it failed with ${String(run.error)}`);
  return run;
}

describe('runHandler', () => {
  it('runs the handler once and returns what it emitted when it succeeds', async () => {
    const { def, calls } = handlerThatRuns(() => ({ type: 'order.seen' }));
    const o = options();
    const run = succeeded(await runHandler(def, input, o));
    expect(run.attempts).toBe(1);
    expect(run.outputs.map((e) => e.type)).toEqual(['order.seen']);
    expect(calls).toEqual([1]);
    expect(o.delays).toEqual([]);
  });

  it.each<[string, HandlerOutput]>([
    ['undefined', undefined],
    ['null', null],
    ['an empty array', []],
  ])('emits nothing when the handler returns %s', async (_what, output) => {
    const { def } = handlerThatRuns(() => output);
    expect(succeeded(await runHandler(def, input, options())).outputs).toEqual([]);
  });

  it('waits for an async handler', async () => {
    const { def } = handlerThatRuns(async () => [{ type: 'a.b' }, { type: 'c.d' }]);
    expect(succeeded(await runHandler(def, input, options())).outputs.map((e) => e.type)).toEqual(['a.b', 'c.d']);
  });

  describe('retries', () => {
    it('retries a RetryableError with the backoff delays of the policy, then fails after maxAttempts', async () => {
      const error = new RetryableError('dependency busy');
      const { def, calls } = handlerThatRuns(() => {
        throw error;
      });
      const o = options();
      const run = failed(await runHandler(def, input, o));
      expect(run.attempts).toBe(4);
      expect(run.error).toBe(error);
      expect(calls).toEqual([1, 2, 3, 4]);
      // initial 100, times 3 each attempt, capped at 1000; no sleep after the last attempt.
      expect(o.delays).toEqual([100, 300, 900]);
    });

    it('caps the delay at maxDelayMs', async () => {
      const { def } = handlerThatRuns(
        () => {
          throw new RetryableError('busy');
        },
        { maxAttempts: 5, initialDelayMs: 400, multiplier: 2, maxDelayMs: 1_000, jitter: 0 },
      );
      const o = options();
      await runHandler(def, input, o);
      expect(o.delays).toEqual([400, 800, 1_000, 1_000]);
    });

    it('succeeds on a later attempt and reports how many it took', async () => {
      const { def, calls } = handlerThatRuns((_e, attempt) => {
        if (attempt < 3) throw new RetryableError('busy');
        return { type: 'order.seen' };
      });
      const o = options();
      const run = succeeded(await runHandler(def, input, o));
      expect(run.attempts).toBe(3);
      expect(calls).toEqual([1, 2, 3]);
      expect(o.delays).toEqual([100, 300]);
    });

    it('treats any error with retryable: true as retryable', async () => {
      const { def, calls } = handlerThatRuns(() => {
        throw Object.assign(new Error('timeout'), { retryable: true });
      });
      expect(failed(await runHandler(def, input, options())).attempts).toBe(4);
      expect(calls).toHaveLength(4);
    });

    it('never retries when maxAttempts is 1', async () => {
      const { def } = handlerThatRuns(
        () => {
          throw new RetryableError('busy');
        },
        { ...exactRetry, maxAttempts: 1 },
      );
      const o = options();
      expect(failed(await runHandler(def, input, o)).attempts).toBe(1);
      expect(o.delays).toEqual([]);
    });

    it.each<[string, () => unknown]>([
      ['a plain Error', () => new Error('bug')],
      ['a PermanentError', () => new PermanentError('never valid')],
      ['a thrown string', () => 'oops'],
    ])('fails at once, without retrying, on %s', async (_what, make) => {
      const error = make();
      const { def, calls } = handlerThatRuns(() => {
        throw error;
      });
      const o = options();
      const run = failed(await runHandler(def, input, o));
      expect(run.attempts).toBe(1);
      expect(run.error).toBe(error);
      expect(calls).toEqual([1]);
      expect(o.delays).toEqual([]);
    });

    it('fails at once on a rejected promise that is not retryable', async () => {
      const { def, calls } = handlerThatRuns(async () => {
        throw new PermanentError('never valid');
      });
      expect(failed(await runHandler(def, input, options())).attempts).toBe(1);
      expect(calls).toEqual([1]);
    });
  });

  describe('schema', () => {
    it('dead-letters at once an event whose data fails the schema, without calling the handler', async () => {
      const handle = jest.fn(() => ({ type: 'order.seen' }));
      const def = defineHandler({ name: 'strict', types: ['order.*'], schema: fields({ orderId: 'string', amount: 'number' }), handle });
      const o = options();
      const run = failed(await runHandler(def, { ...input, data: { amount: 'five' } }, o));
      expect(handle).not.toHaveBeenCalled();
      expect(run.attempts).toBe(1);
      expect(run.error).toBeInstanceOf(PermanentError);
      expect(String((run.error as Error).message)).toMatch(/'strict'/);
      expect(String((run.error as Error).message)).toMatch(/data\.orderId is required/);
      expect(String((run.error as Error).message)).toMatch(/data\.amount must be a number/);
      expect(o.delays).toEqual([]);
    });

    it('calls the handler with data that passes the schema', async () => {
      const handle = jest.fn(() => undefined);
      const def = defineHandler({ name: 'strict', types: ['order.*'], schema: fields({ amount: 'number' }), handle });
      expect(succeeded(await runHandler(def, input, options())).attempts).toBe(1);
      expect(handle).toHaveBeenCalledTimes(1);
    });
  });

  describe('emitted events', () => {
    it('fail permanently, naming the handler, when one is invalid', async () => {
      const { def, calls } = handlerThatRuns(() => [{ type: 'order.ok' }, { type: 'bad type' }]);
      const o = options();
      const run = failed(await runHandler(def, input, o));
      expect(run.attempts).toBe(1);
      expect(run.error).toBeInstanceOf(PermanentError);
      expect((run.error as Error).message).toMatch(/handler 'test-handler' emitted an invalid event/);
      expect((run.error as Error).message).toMatch(/type/);
      expect(calls).toEqual([1]);
      expect(o.delays).toEqual([]);
    });

    it('are completed into valid CloudEvents', async () => {
      const { def } = handlerThatRuns(() => [{ type: 'a.b', data: { x: 1 } }, { type: 'c.d' }]);
      const run = succeeded(await runHandler(def, input, options()));
      // Both, or the loop below could check nothing.
      expect(run.outputs.map((e) => e.type)).toEqual(['a.b', 'c.d']);
      for (const out of run.outputs) expect(validateEvent(out)).toEqual([]);
    });
  });
});

describe('completeEmitted', () => {
  it('gives an emitted event a deterministic id from the input, the handler and its position', () => {
    expect(completeEmitted('enrich', input, { type: 'a.b' }, 0).id).toBe('order-7:enrich:0');
    expect(completeEmitted('enrich', input, { type: 'a.b' }, 2).id).toBe('order-7:enrich:2');
    // A replay (a redelivered copy of the input, a minute later, other random numbers) completes the same event.
    const first = completeEmitted('enrich', input, { type: 'a.b' }, 2);
    const now = Date.now();
    jest.spyOn(Date, 'now').mockReturnValue(now + 60_000);
    jest.spyOn(Math, 'random').mockReturnValue(0.123);
    try {
      expect(completeEmitted('enrich', structuredClone(input), { type: 'a.b' }, 2)).toEqual(first);
    } finally {
      jest.restoreAllMocks();
    }
    // And only that: another handler, position or input gives another id.
    expect(
      new Set([
        first.id,
        completeEmitted('other', input, { type: 'a.b' }, 2).id,
        completeEmitted('enrich', input, { type: 'a.b' }, 1).id,
        completeEmitted('enrich', { ...input, id: 'order-8' }, { type: 'a.b' }, 2).id,
      ]).size,
    ).toBe(4);
  });

  it('fills specversion, source, time, partitionkey and traceparent from the handler and the input', () => {
    expect(completeEmitted('enrich', input, { type: 'order.enriched', data: { y: 2 } }, 0)).toEqual({
      specversion: '1.0',
      id: 'order-7:enrich:0',
      source: 'mesh://processor/enrich',
      type: 'order.enriched',
      time: '2026-02-01T10:00:00Z',
      partitionkey: 'customer-3',
      traceparent: TRACEPARENT,
      data: { y: 2 },
    });
  });

  it('keeps what the handler set itself', () => {
    const emitted: EmittedEvent = {
      type: 'order.enriched',
      id: 'own-id',
      source: 'mesh://custom',
      time: '2026-03-01T00:00:00Z',
      partitionkey: 'customer-9',
      traceparent: '00-11111111111111111111111111111111-2222222222222222-01',
      subject: 'sub',
      region: 'eu',
    };
    expect(completeEmitted('enrich', input, emitted, 0)).toEqual({ specversion: '1.0', ...emitted });
  });

  it("takes the input's subject, then source, as the key when the input has no partitionkey", () => {
    const { partitionkey: _k, ...unkeyed } = input;
    expect(completeEmitted('h', unkeyed, { type: 'a.b' }, 0).partitionkey).toBe('order-7');
    const { subject: _s, ...bare } = unkeyed;
    expect(completeEmitted('h', bare, { type: 'a.b' }, 0).partitionkey).toBe('shop');
  });

  it('adds no traceparent when the input has none', () => {
    const { traceparent: _t, ...untraced } = input;
    // As published: serialized.
    expect(JSON.parse(JSON.stringify(completeEmitted('h', untraced, { type: 'a.b' }, 0)))).not.toHaveProperty('traceparent');
  });

  it('cannot be talked into another specversion', () => {
    expect(completeEmitted('h', input, { type: 'a.b', specversion: '0.3' }, 0).specversion).toBe('1.0');
  });
});
