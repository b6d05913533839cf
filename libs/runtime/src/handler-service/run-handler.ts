/**
 * Runs one event through one handler: schema check, the handler, and the
 * events it emits made complete (ids derived from the input, so a replay
 * emits the same ids). Retries are the caller's: by a nak with a delay
 * (processor-worker) or, where that is not safe, in process (runHandler).
 */
import { MaxPartitionKeyLength, MaxTypeLength, partitionKeyOf, validateEvent, type CloudEvent } from '@mesh/contracts';
import { isRetryable, PermanentError } from '../errors';
import type { AnyHandlerDefinition, EmittedEvent, HandlerContext } from '../handler';
import type { Logger } from '../logger';
import { backoffDelay, defaultRetryPolicy, type RetryPolicy } from '../retry';
import { checkData, type DataCheck } from '../schema';
import { keyStateOver, type HandlerStateStore, type StateWrite } from './handler-state';

/** A run; a successful one carries what it wrote to its key's state (`state`), for the caller to apply. */
export type HandlerRun = { ok: true; outputs: CloudEvent[]; attempts: number; state?: StateWrite } | { ok: false; error: unknown; attempts: number };

export interface RunOptions {
  partition: number;
  log: Logger;
  sleep(ms: number): Promise<void>;
  /** Where `ctx.state` reads from; without it a handler starts from no state. */
  state?: HandlerStateStore;
}

/** Attributes completeEmitted sets itself; any other a handler sets is copied as it is. */
const COMPLETED = new Set(['specversion', 'id', 'source', 'type', 'time', 'partitionkey', 'data', 'traceparent']);

export function completeEmitted(handler: string, input: CloudEvent, emitted: EmittedEvent, position: number): CloudEvent {
  // One object literal of a fixed shape: spreading the emitted event into a
  // new object cost twice as much, here and again in JSON.stringify.
  const out: CloudEvent = {
    specversion: '1.0',
    id: emitted.id ?? `${input.id}:${handler}:${position}`,
    source: emitted.source ?? `mesh://processor/${handler}`,
    type: emitted.type,
    time: emitted.time ?? input.time,
    partitionkey: emitted.partitionkey ?? partitionKeyOf(input),
    data: emitted.data,
    traceparent: (emitted.traceparent as string | undefined) ?? input.traceparent,
  };
  for (const k in emitted) {
    if (!COMPLETED.has(k)) (out as unknown as Record<string, unknown>)[k] = (emitted as Record<string, unknown>)[k];
  }
  return out;
}

const TYPE = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;

function emittedIsPlain(e: EmittedEvent): boolean {
  for (const k in e) if (k !== 'type' && k !== 'data' && k !== 'partitionkey') return false;
  return e.type.length <= MaxTypeLength && (e.partitionkey === undefined || e.partitionkey.length <= MaxPartitionKeyLength);
}

function toList(output: unknown): EmittedEvent[] {
  if (output === undefined || output === null) return [];
  return (Array.isArray(output) ? output : [output]) as EmittedEvent[];
}

/**
 * One attempt of a handler on an event (the `attempt`-th). A failure is
 * returned, not thrown; whether to try again is the caller's choice.
 */
export async function attemptHandler(
  def: AnyHandlerDefinition,
  event: CloudEvent,
  attempt: number,
  o: Pick<RunOptions, 'partition' | 'log' | 'state'>,
): Promise<HandlerRun> {
  let input = event;
  if (def.schema) {
    let check: DataCheck;
    try {
      check = await checkData(def.schema, event.data);
    } catch (err) {
      // A schema that throws is the handler's bug, not the event's: retried like one.
      return { ok: false, attempts: attempt, error: err };
    }
    if (!check.ok) {
      return { ok: false, attempts: attempt, error: new PermanentError(`event data rejected by the schema of '${def.name}': ${check.problems.join('; ')}`) };
    }
    if (check.data !== event.data) input = { ...event, data: check.data };
  }
  // Made on first use: most handlers keep no state, and this runs per event.
  let state: ReturnType<typeof keyStateOver> | undefined;
  const stateOf = () => {
    const key = partitionKeyOf(event);
    return o.state ? o.state.attempt(def.name, key) : keyStateOver(def.name, key, () => undefined);
  };
  const ctx: HandlerContext = {
    handler: def.name,
    partition: o.partition,
    attempt,
    log: o.log,
    get state() {
      return (state ??= stateOf()).state;
    },
  };
  try {
    const emitted = toList(await def.handle(input, ctx));
    const outputs = emitted.map((e, i) => completeEmitted(def.name, event, e, i));
    for (let i = 0; i < outputs.length; i++) {
      const out = outputs[i];
      // What came from the input was validated at ingest; the full check is
      // only needed when the handler set attributes beyond type, data and key.
      if (emittedIsPlain(emitted[i]) && TYPE.test(out.type) && typeof out.partitionkey === 'string' && out.partitionkey !== '') continue;
      const problems = validateEvent(out);
      if (problems.length > 0) {
        const text = problems.map((p) => `${p.attribute || 'event'} ${p.problem}`).join('; ');
        return { ok: false, attempts: attempt, error: new PermanentError(`handler '${def.name}' emitted an invalid event: ${text}`) };
      }
    }
    return { ok: true, outputs, attempts: attempt, state: state?.write() };
  } catch (err) {
    return { ok: false, error: err, attempts: attempt };
  }
}

/** Whether a failed run should be tried again under its handler's policy. */
export function retriable(def: AnyHandlerDefinition, run: HandlerRun): boolean {
  return !run.ok && isRetryable(run.error) && run.attempts < retryPolicy(def).maxAttempts;
}

export function retryPolicy(def: AnyHandlerDefinition): RetryPolicy {
  return { ...defaultRetryPolicy, ...def.retry };
}

/**
 * Runs a handler to the end in this process: retryable failures are tried
 * again after the policy's backoff (`sleep`), from attempt `firstAttempt`.
 */
export async function runHandler(def: AnyHandlerDefinition, event: CloudEvent, o: RunOptions, firstAttempt = 1): Promise<HandlerRun> {
  const policy = retryPolicy(def);
  for (let attempt = firstAttempt; ; attempt++) {
    const run = await attemptHandler(def, event, attempt, o);
    if (!retriable(def, run)) return run;
    const delay = backoffDelay(policy, attempt);
    o.log.debug('handler failed; retrying', { handler: def.name, id: event.id, attempt, delay_ms: delay, error: (run as { error: unknown }).error });
    await o.sleep(delay);
  }
}
