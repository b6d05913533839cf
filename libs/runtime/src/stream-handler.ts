/**
 * A handler written as an RxJS operator: `pipe(events$, ctx)` turns a stream
 * of events into the events to emit.
 *
 * The operator is applied to each event on its own: `events$` emits that one
 * event and completes, and what the returned Observable emits until it
 * completes is what the event emits. So every emission has one input event,
 * which gives it its id (a replay emits the same ids), its retries (an error
 * retries or dead-letters that event only) and its place in per-key order
 * (the next event of the key starts once this one's Observable completes).
 *
 * Safe operators are those whose result depends on the event alone (and on
 * `ctx.state`): map, filter, mergeMap / concatMap / switchMap to an async
 * call that completes (an enrichment lookup), catchError, defaultIfEmpty,
 * toArray, bufferCount or reduce over the items one event expands into, and
 * timeout. Operators that remember across events (scan, pairwise, distinct,
 * bufferCount or bufferTime across events, window*) see one event only here:
 * memory across events kept inside an operator would be lost on a crash or
 * when the partition moves, while the events it came from are acked already;
 * keep it in `ctx.state`, which is checkpointed with the outputs. An
 * Observable that never completes (interval without take) holds its key.
 */
import type { CloudEvent } from '@mesh/contracts';
import { lastValueFrom, of, toArray, type Observable } from 'rxjs';
import { DefinitionError } from './errors';
import { defineHandler, type EmittedEvent, type HandlerContext, type HandlerDefinition } from './handler';

export interface StreamHandlerDefinition<T = unknown> extends Omit<HandlerDefinition<T>, 'handle'> {
  /** The operator: from the stream of one event to the events it emits. Must complete. */
  pipe(events$: Observable<CloudEvent<T>>, ctx: HandlerContext): Observable<EmittedEvent>;
}

/** A stream handler is a handler like any other: the runtime runs its operator per event. */
export function defineStreamHandler<T>(definition: StreamHandlerDefinition<T>): HandlerDefinition<T> {
  if (typeof definition.pipe !== 'function')
    throw new DefinitionError('handler', String(definition.name), 'pipe must be a function (events$, ctx) => Observable');
  const { pipe, ...rest } = definition;
  return defineHandler<T>({
    ...rest,
    handle: (event, ctx) => {
      const out = pipe(of(event), ctx);
      if (!out || typeof (out as Observable<EmittedEvent>).subscribe !== 'function') {
        throw new DefinitionError('handler', definition.name, `pipe must return an Observable, got ${out === null ? 'null' : typeof out}`);
      }
      return lastValueFrom(out.pipe(toArray()));
    },
  });
}
