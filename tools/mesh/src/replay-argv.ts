/**
 * The arguments of `mesh replay`, checked before anything connects: where
 * to replay from, and whether the operator said yes. Without `--yes` (or
 * `--dry-run`) the command asks nothing and refuses, saying what it would
 * do: a replay pauses every stage and resets their state, which is not to
 * be done by a slip of the keyboard nor to hang a script on a prompt.
 */
import { UsageError } from './errors';

export interface ReplayArgs {
  /** `beginning`, or the RFC 3339 time given, normalised (`toISOString`). */
  from: string;
  dryRun: boolean;
  /** How long to wait for every stage instance to pause. */
  timeoutMs: number;
}

export const DefaultReplayTimeoutMs = 60_000;

const Rfc3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

/** `beginning`, or an RFC 3339 time with its offset, as an ISO string. */
export function parseReplayFrom(text: string): string {
  if (text === 'beginning') return text;
  const ms = Rfc3339.test(text) ? Date.parse(text.replace(' ', 'T')) : NaN;
  if (!Number.isFinite(ms)) {
    throw new UsageError(`invalid --from '${text}'; use 'beginning' or an RFC 3339 time with its offset, e.g. 2026-11-30T08:00:00Z`);
  }
  return new Date(ms).toISOString();
}

/** What the replay does, in one sentence: the refusal without --yes says it. */
export function describeReplay(from: string): string {
  const where = from === 'beginning' ? 'every event stored in MESH_INGEST' : `the events stored in MESH_INGEST at or after ${from}`;
  return (
    `'mesh replay' pauses every router, processor and aggregator instance, resets their consumers, ` +
    `the processor's retry records and checkpoints, the aggregator's checkpoints and every result in mesh_aggregates, ` +
    `then rebuilds them from ${where}`
  );
}

export function parseReplayArgs(rest: readonly string[], value: (flag: string) => string | undefined, has: (flag: string) => boolean): ReplayArgs {
  if (rest.length > 0) throw new UsageError(`unexpected argument '${rest[0]}' for 'mesh replay'; give the start with --from <time|beginning>`);
  if (!has('--from')) throw new UsageError(`'mesh replay' needs --from: 'beginning' or an RFC 3339 time such as 2026-11-30T08:00:00Z`);
  const from = parseReplayFrom(value('--from')!);
  let timeoutMs = DefaultReplayTimeoutMs;
  if (has('--timeout')) {
    const text = value('--timeout')!;
    timeoutMs = /^\d+$/.test(text) ? Number(text) : NaN;
    if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1) throw new UsageError(`invalid --timeout '${text}'; use a whole number of milliseconds from 1`);
  }
  const dryRun = has('--dry-run');
  if (!dryRun && !has('--yes')) {
    throw new UsageError(`${describeReplay(from)}. Nothing was done: add --yes to run it, or --dry-run to list what it would reset`);
  }
  return { from, dryRun, timeoutMs };
}
