/**
 * An aggregation: the aggregator's counterpart of a handler. One file
 * exports one definition; the runtime keeps its windows by event time,
 * checkpoints them and serves the results.
 */
import type { CloudEvent } from '@mesh/contracts';
import { DefinitionError } from './errors';
import { checkName } from './handler';
import { typePatternProblem } from '@mesh/contracts';

/**
 * How events are grouped in time. Tumbling and hopping windows have a fixed
 * size; a session is a key's run of activity: events closer than `gapMs` to
 * one another fall in one session, which ends `gapMs` after its last event.
 * A late event that comes within the gap of two sessions merges them into
 * one (the definition's `merge` combines their accumulators).
 */
export type WindowSpec = { kind: 'tumbling'; sizeMs: number } | { kind: 'hopping'; sizeMs: number; hopMs: number } | { kind: 'session'; gapMs: number };

export interface AggregationDefinition<A extends Record<string, unknown> = Record<string, unknown>, T = unknown> {
  /** Unique; names the results (`GET /v1/aggregates/<name>/<key>`) and `mesh.aggregates.<name>`. */
  name: string;
  /** Event types it takes, with wildcards; default every processed event. */
  types?: readonly string[];
  window: WindowSpec;
  /**
   * Grouping key; default the event's partition key. Each partition
   * aggregates only its own events, so a key must be a function of the
   * partition key (all events of one key in one partition); to group across
   * partitions, re-key in a handler (emit with `partitionkey` = the group).
   */
  key?(event: CloudEvent<T>): string;
  /** How long after a window ends events may still be added to it. */
  allowedLatenessMs?: number;
  /** The empty accumulator of a window. */
  init(): A;
  /** Fold one event into an accumulator; must not mutate anything but `acc`. */
  add(acc: A, event: CloudEvent<T>): A;
  /**
   * Combine the accumulators of two sessions a late event bridges (`a` the
   * earlier); required for session windows, unused by the others. Must not
   * mutate anything but `a`.
   */
  merge?(a: A, b: A): A;
}

export function defineAggregation<A extends Record<string, unknown>, T = unknown>(d: AggregationDefinition<A, T>): AggregationDefinition<A, T> {
  checkName('aggregation', d.name);
  const w = d.window;
  if (!w || !(w.kind === 'tumbling' || w.kind === 'hopping' || w.kind === 'session')) {
    throw new DefinitionError(
      'aggregation',
      d.name,
      `window.kind must be 'tumbling', 'hopping' or 'session', got ${JSON.stringify((w as { kind?: unknown } | undefined)?.kind)}`,
    );
  }
  if (w.kind === 'session') {
    if (!(w.gapMs > 0))
      throw new DefinitionError('aggregation', d.name, `window.gapMs must be a positive number of milliseconds, got ${JSON.stringify(w.gapMs)}`);
    if (typeof d.merge !== 'function')
      throw new DefinitionError('aggregation', d.name, 'session windows need merge(a, b) to combine two sessions a late event bridges');
  } else if (!(w.sizeMs > 0)) throw new DefinitionError('aggregation', d.name, 'window.sizeMs must be a positive number of milliseconds');
  if (w.kind === 'hopping' && !(w.hopMs > 0 && w.hopMs <= w.sizeMs)) {
    throw new DefinitionError('aggregation', d.name, 'window.hopMs must be positive and at most window.sizeMs');
  }
  for (const p of d.types ?? []) {
    const problem = typePatternProblem(p);
    if (problem) throw new DefinitionError('aggregation', d.name, `type pattern ${JSON.stringify(p)} ${problem}`);
  }
  return d;
}
