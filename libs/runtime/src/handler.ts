/**
 * A subject handler: the user's code in the processor. One file exports one
 * definition; the runtime acks, retries with backoff, dead-letters and traces,
 * so a handler only returns what it emits or throws.
 *
 * Ordering: events of one partition key reach a handler one at a time, in
 * stream order; different keys may run concurrently.
 * Delivery: effectively once. A handler may be called again for an event it
 * already saw (after a crash), so it must be a pure function of the event
 * and its key's state (`ctx.state`), and what it emits is deduplicated
 * downstream by ids derived from the input. State kept through `ctx.state`
 * is exact: after a crash and a replay it is as if each event ran once.
 */
import { typeMatches, typePatternProblem, type CloudEvent } from '@mesh/contracts';
import { DefinitionError, DuplicateNameError } from './errors';
import type { Logger } from './logger';
import type { RetryPolicy } from './retry';
import { schemaProblem, type HandlerSchema } from './schema';

/** An event a handler emits; the runtime fills what is left out. */
export interface EmittedEvent {
  type: string;
  data?: unknown;
  /** Default: derived from the input event, the handler and the position, so a replay emits the same id. */
  id?: string;
  /** Default: `mesh://processor/<handler>`. */
  source?: string;
  subject?: string;
  /** Default: the input's key. A new key moves the event to that key's partition (re-keying). */
  partitionkey?: string;
  /** Default: the input's time. */
  time?: string;
  datacontenttype?: string;
  [extension: string]: unknown;
}

export type HandlerOutput = EmittedEvent | readonly EmittedEvent[] | null | undefined | void;

/**
 * The state a handler keeps for the event's partition key: one JSON value
 * per handler and key, checkpointed with the partition's commit (see
 * handler-service/handler-state.ts). Writes count only if the handler
 * returns normally; a throw (retry or dead letter) leaves the state as it was.
 */
export interface KeyState {
  /** The partition key this state belongs to. */
  readonly key: string;
  /** The value (a fresh copy: mutating it changes nothing until `set`), or undefined when none was set. */
  get<T = unknown>(): T | undefined;
  /** Replace the value; it must be JSON, at most MaxStateBytes characters of it, or this throws a PermanentError. */
  set(value: unknown): void;
  /** Remove the value: `get()` gives undefined again. */
  delete(): void;
}

export interface HandlerContext {
  readonly handler: string;
  readonly partition: number;
  /** 1 on the first try, then 2, 3, ... while retrying. */
  readonly attempt: number;
  readonly log: Logger;
  /** This handler's state for the event's partition key. */
  readonly state: KeyState;
}

export interface HandlerDefinition<T = unknown> {
  /** Unique; lowercase letters, digits, '-' and '_'. Names the subject `mesh.routed.<p>.<name>`. */
  name: string;
  /** Event types it takes, with `*` and `>` wildcards; the router's default routes. */
  types: readonly string[];
  description?: string;
  /**
   * Checked before `handle`; an event whose data fails it is dead-lettered at
   * once. `fields({...})` or any Standard Schema (zod, valibot, ...), whose
   * output is the `data` the handler gets.
   */
  schema?: HandlerSchema<T>;
  retry?: Partial<RetryPolicy>;
  handle(event: CloudEvent<T>, ctx: HandlerContext): HandlerOutput | Promise<HandlerOutput>;
}

const NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;

/** Type-checks a handler definition and fails early on one that cannot work. */
export function defineHandler<T>(definition: HandlerDefinition<T>): HandlerDefinition<T> {
  checkName('handler', definition.name);
  if (!Array.isArray(definition.types) || definition.types.length === 0) {
    throw new DefinitionError('handler', definition.name, 'types must list at least one event type pattern, such as "order.created" or "order.*"');
  }
  for (const pattern of definition.types) {
    const problem = typePatternProblem(pattern);
    if (problem) throw new DefinitionError('handler', definition.name, `type pattern ${JSON.stringify(pattern)} ${problem}`);
  }
  if (typeof definition.handle !== 'function') throw new DefinitionError('handler', definition.name, 'handle must be a function');
  const problem = schemaProblem(definition.schema);
  if (problem) throw new DefinitionError('handler', definition.name, problem);
  return definition;
}

export function checkName(kind: string, name: string): void {
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new DefinitionError(kind, String(name), "name must be 1 to 64 lowercase letters, digits, '-' or '_', starting with a letter or digit");
  }
}

/** Definitions by name; a duplicate name fails start-up. */
export function registry<D extends { name: string }>(kind: string, definitions: readonly D[]): ReadonlyMap<string, D> {
  const byName = new Map<string, D>();
  for (const d of definitions) {
    if (byName.has(d.name)) throw new DuplicateNameError(kind, d.name);
    byName.set(d.name, d);
  }
  return byName;
}

/** Does this handler take events of this type? */
export function handlerTakes(definition: Pick<HandlerDefinition, 'types'>, type: string): boolean {
  return definition.types.some((p) => typeMatches(p, type));
}

/** A handler of any data type, as registries hold them. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyHandlerDefinition = HandlerDefinition<any>;
