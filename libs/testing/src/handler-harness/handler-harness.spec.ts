import { handlerStatePrefix, Headers, Streams } from '@mesh/contracts';
import { defineAggregation, defineHandler, defineStreamHandler, MaxStateBytes, RetryableError } from '@mesh/runtime';
import { bufferCount, from, map, mergeMap } from 'rxjs';
import { createHandlerHarness } from './handler-harness';

/** Counts events per key in ctx.state and emits the running count. */
const counter = defineHandler({
  name: 'counter',
  types: ['tick'],
  handle(event, ctx) {
    const n = (ctx.state.get<number>() ?? 0) + 1;
    ctx.state.set(n);
    return { type: 'tick.counted', data: { n } };
  },
});

/** Fails with a retryable error until attempt `data.okAt`. */
const flaky = defineHandler({
  name: 'flaky',
  types: ['flaky'],
  retry: { maxAttempts: 3, initialDelayMs: 100, multiplier: 2, jitter: 0, maxDelayMs: 10_000 },
  handle(event, ctx) {
    const okAt = (event.data as { okAt: number }).okAt;
    ctx.state.set(ctx.attempt);
    if (ctx.attempt < okAt) throw new RetryableError(`busy on attempt ${ctx.attempt}`);
    return { type: 'flaky.done', data: { attempt: ctx.attempt } };
  },
});

const tick = (key: string, id?: string) => ({ type: 'tick', partitionkey: key, ...(id ? { id } : {}) });
const countsOf = (mesh: ReturnType<typeof createHandlerHarness>, key: string) =>
  mesh
    .emitted('tick.counted')
    .filter((e) => e.partitionkey === key)
    .map((e) => (e.data as { n: number }).n);

describe('the handler harness', () => {
  it('keeps state per handler and key, and returns what the handlers emitted', async () => {
    const mesh = createHandlerHarness({ handlers: [counter] });
    await mesh.send([tick('a'), tick('b'), tick('a')]);
    await mesh.send(tick('a'));
    expect(mesh.state('counter', 'a')).toBe(3);
    expect(mesh.state('counter', 'b')).toBe(1);
    expect(mesh.state('counter', 'nobody')).toBeUndefined();
    expect(countsOf(mesh, 'a')).toEqual([1, 2, 3]);
    expect(mesh.counters).toEqual(expect.objectContaining({ processed: 4, emitted: 4, failed: 0 }));
  });

  it('checkpoints state in mesh_checkpoints under the partition prefix, one entry per handler and key', async () => {
    const mesh = createHandlerHarness({ handlers: [counter], partitions: 1 });
    await mesh.send([tick('a'), tick('b c')]);
    expect(mesh.checkpoints.keys(handlerStatePrefix(0))).toEqual(['processor.p00.state.counter.a', 'processor.p00.state.counter.b=20c']);
  });

  it('retries with the handler backoff on the harness clock, holding only the key of the failing event', async () => {
    const mesh = createHandlerHarness({ handlers: [flaky] });
    await mesh.send([{ type: 'flaky', id: 'f-1', partitionkey: 'k', data: { okAt: 3 } }]);
    await mesh.send([
      { type: 'flaky', id: 'f-2', partitionkey: 'k', data: { okAt: 1 } },
      { type: 'flaky', id: 'f-3', partitionkey: 'other', data: { okAt: 1 } },
    ]);
    expect(mesh.retries()).toEqual([{ handler: 'flaky', id: 'f-1', attempt: 1, delayMs: 100, error: 'busy on attempt 1' }]);
    // f-2 waits behind f-1 (same key); f-3 goes on.
    expect(mesh.emitted().map((e) => e.id)).toEqual(['f-3:flaky:0']);
    // A failed attempt's state write does not count.
    expect(mesh.state('flaky', 'k')).toBeUndefined();

    await mesh.advance(99);
    expect(mesh.retries()).toHaveLength(1);
    await mesh.advance(1);
    expect(mesh.retries().map((r) => [r.attempt, r.delayMs])).toEqual([
      [1, 100],
      [2, 200],
    ]);
    await mesh.advance(200);
    expect(mesh.emitted().map((e) => e.id)).toEqual(['f-3:flaky:0', 'f-1:flaky:0']);
    // What waited behind it comes a little after the head of its key (BEHIND_MS).
    await mesh.advance(25);
    expect(mesh.emitted().map((e) => e.id)).toEqual(['f-3:flaky:0', 'f-1:flaky:0', 'f-2:flaky:0']);
    expect(mesh.emitted('flaky.done')[1].data).toEqual({ attempt: 3 });
    expect(mesh.state('flaky', 'k')).toBe(1);
    expect(mesh.pending()).toBe(0);
  });

  it('dead-letters after the last attempt with the headers the processor sets', async () => {
    const mesh = createHandlerHarness({ handlers: [flaky] });
    await mesh.send({ type: 'flaky', id: 'f-1', partitionkey: 'k', data: { okAt: 99 } });
    await mesh.advance(10_000);
    expect(mesh.retries().map((r) => r.delayMs)).toEqual([100, 200]);
    const [letter] = mesh.deadLetters();
    expect(letter.event.id).toBe('f-1');
    expect(letter.headers).toEqual(
      expect.objectContaining({
        [Headers.stage]: 'processor',
        [Headers.handler]: 'flaky',
        [Headers.error]: 'busy on attempt 3',
        [Headers.errorKind]: 'RetryableError',
        [Headers.attempts]: '3',
        [Headers.originalStream]: Streams.routed,
      }),
    );
    expect(mesh.emitted()).toEqual([]);
    expect(mesh.pending()).toBe(0);
  });

  it('after a crash before the acks, leaves state and outputs as if each event ran once', async () => {
    const mesh = createHandlerHarness({ handlers: [counter] });
    await mesh.send([tick('a'), tick('b')]);
    await mesh.send([tick('a'), tick('a'), tick('b')], { crash: 'before-ack' });
    await mesh.send(tick('a'));
    expect(mesh.state('counter', 'a')).toBe(4);
    expect(mesh.state('counter', 'b')).toBe(2);
    expect(countsOf(mesh, 'a')).toEqual([1, 2, 3, 4]);
    expect(countsOf(mesh, 'b')).toEqual([1, 2]);
  });

  it('applies each event once when a commit wrote the state of some keys of an envelope and not of others', async () => {
    const mesh = createHandlerHarness({ handlers: [counter], partitions: 1 });
    await mesh.send([tick('a'), tick('b')]);
    // The next batch's state write of key b fails after a's was written: the batch comes again.
    mesh.checkpoints.failNextWrite((key) => key.endsWith('.counter.b'));
    await mesh.send([tick('a'), tick('b')]);
    expect(mesh.state('counter', 'a')).toBe(2);
    expect(mesh.state('counter', 'b')).toBe(2);
    expect(countsOf(mesh, 'a')).toEqual([1, 2]);
    expect(countsOf(mesh, 'b')).toEqual([1, 2]);
  });

  it('fails a handler that keeps too large a value, naming the limit, and keeps the state as it was', async () => {
    const hoarder = defineHandler({
      name: 'hoarder',
      types: ['hoard'],
      handle(event, ctx) {
        ctx.state.set('x'.repeat((event.data as { size: number }).size));
      },
    });
    const mesh = createHandlerHarness({ handlers: [hoarder] });
    await mesh.send({ type: 'hoard', partitionkey: 'k', data: { size: 10 } });
    await mesh.send({ type: 'hoard', partitionkey: 'k', data: { size: MaxStateBytes } });
    expect(mesh.deadLetters().map((d) => d.headers[Headers.error])).toEqual([
      `state of handler 'hoarder' for key "k" would be ${MaxStateBytes + 2} characters of JSON; at most ${MaxStateBytes} are accepted: keep a smaller summary (counters, a bounded list) instead`,
    ]);
    expect(mesh.state('hoarder', 'k')).toBe('x'.repeat(10));
  });

  it('runs a stream handler per event: emissions belong to their event, bufferCount groups what one event expands into', async () => {
    const lines = defineStreamHandler<{ items: string[] }>({
      name: 'lines',
      types: ['order.placed'],
      pipe: (events$, ctx) =>
        events$.pipe(
          mergeMap((e) => from(e.data!.items)),
          bufferCount(2),
          map((items) => {
            ctx.state.set((ctx.state.get<number>() ?? 0) + items.length);
            return { type: 'order.lines', data: { items } };
          }),
        ),
    });
    const mesh = createHandlerHarness({ handlers: [lines] });
    await mesh.send([
      { type: 'order.placed', id: 'o-1', partitionkey: 'k', data: { items: ['a', 'b', 'c'] } },
      { type: 'order.placed', id: 'o-2', partitionkey: 'k', data: { items: ['d'] } },
    ]);
    expect(mesh.emitted().map((e) => [e.id, e.data])).toEqual([
      ['o-1:lines:0', { items: ['a', 'b'] }],
      ['o-1:lines:1', { items: ['c'] }],
      ['o-2:lines:0', { items: ['d'] }],
    ]);
    expect(mesh.state('lines', 'k')).toBe(4);
  });

  it('aggregates what the handlers emit with the aggregator window code', async () => {
    const perKey = defineAggregation({
      name: 'ticks',
      types: ['tick.counted'],
      window: { kind: 'tumbling', sizeMs: 60_000 },
      init: () => ({ count: 0 }),
      add: (acc) => ({ count: acc.count + 1 }),
    });
    const mesh = createHandlerHarness({ handlers: [counter], aggregations: [perKey], clock: '2026-03-01T10:00:00Z' });
    await mesh.send([tick('a'), tick('a'), tick('b')]);
    expect(mesh.aggregates('ticks', 'a')).toEqual({
      name: 'ticks',
      key: 'a',
      windows: [{ start: '2026-03-01T10:00:00.000Z', end: '2026-03-01T10:01:00.000Z', closed: false, count: 2 }],
    });
    expect(mesh.aggregates('ticks', 'nobody')).toBeUndefined();
  });

  it('names what is wrong with an event it cannot send', async () => {
    const mesh = createHandlerHarness({ handlers: [counter] });
    await expect(mesh.send({ type: 'tock', partitionkey: 'k' })).rejects.toThrow('harness: no handler takes events of type "tock"; handlers: counter');
    await expect(mesh.send({ type: '', partitionkey: 'k' })).rejects.toThrow(/harness: event "event-\d+" is not a valid CloudEvent: type/);
    expect(() => mesh.state('nobody', 'k')).toThrow('harness: no handler named "nobody"; handlers: counter');
  });
});
