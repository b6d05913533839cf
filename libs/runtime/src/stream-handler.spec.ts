import type { CloudEvent } from '@mesh/contracts';
import { concatMap, from, map, of, throwError, type Observable } from 'rxjs';
import { DefinitionError, RetryableError } from './errors';
import type { EmittedEvent } from './handler';
import { attemptHandler } from './handler-service/run-handler';
import { createLogger } from './logger';
import { defineStreamHandler } from './stream-handler';

const log = createLogger({}, 'error', () => {});
const event = (id: string, data: unknown): CloudEvent => ({ specversion: '1.0', id, source: 'test', type: 'x.in', partitionkey: 'k', data });

describe('defineStreamHandler', () => {
  it('runs the operator on the one event, emitting what it emits until it completes, with ids from that event', async () => {
    const split = defineStreamHandler<{ parts: string[] }>({
      name: 'split',
      types: ['x.in'],
      pipe: (events$) =>
        events$.pipe(
          concatMap((e) => from(e.data!.parts)),
          map((part) => ({ type: 'x.part', data: { part } })),
        ),
    });
    const run = await attemptHandler(split, event('e-1', { parts: ['a', 'b'] }), 1, { partition: 0, log });
    expect(run.ok && run.outputs.map((o) => [o.id, o.data])).toEqual([
      ['e-1:split:0', { part: 'a' }],
      ['e-1:split:1', { part: 'b' }],
    ]);
  });

  it('fails the event with the error the operator raised, keeping whether it is retryable', async () => {
    const busy = defineStreamHandler({ name: 'busy', types: ['x.in'], pipe: () => throwError(() => new RetryableError('lookup busy')) });
    const run = await attemptHandler(busy, event('e-1', {}), 1, { partition: 0, log });
    expect(run.ok).toBe(false);
    expect(!run.ok && run.error).toEqual(new RetryableError('lookup busy'));
  });

  it('gives ctx to the operator, state included', async () => {
    const seen = defineStreamHandler({
      name: 'seen',
      types: ['x.in'],
      pipe: (events$, ctx) =>
        events$.pipe(
          map(() => {
            ctx.state.set(ctx.attempt);
            return { type: 'x.seen', data: { key: ctx.state.key } };
          }),
        ),
    });
    const run = await attemptHandler(seen, event('e-1', {}), 2, { partition: 0, log });
    expect(run.ok && [run.outputs[0].data, run.state]).toEqual([{ key: 'k' }, { json: '2' }]);
  });

  it('refuses a definition without pipe, and fails an event whose pipe returns no Observable, naming the handler', async () => {
    expect(() => defineStreamHandler({ name: 'nopipe', types: ['x.in'] } as never)).toThrow(
      new DefinitionError('handler', 'nopipe', 'pipe must be a function (events$, ctx) => Observable'),
    );
    const bad = defineStreamHandler({ name: 'bad', types: ['x.in'], pipe: () => [of({ type: 'x' })] as unknown as Observable<EmittedEvent> });
    const run = await attemptHandler(bad, event('e-1', {}), 1, { partition: 0, log });
    expect(!run.ok && (run.error as Error).message).toBe("handler 'bad': pipe must return an Observable, got object");
  });
});
