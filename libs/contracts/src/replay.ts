/**
 * Replay from history (`mesh replay`): the signal the CLI writes in
 * `mesh_checkpoints` and the stages obey, and how replayed outputs are named.
 *
 * The signal is one watched key rather than a request to each instance: an
 * instance that starts or restarts in the middle of a replay reads the
 * current phase at once and obeys it.
 */
import type { Stage } from './names';

/** Key in `mesh_checkpoints` holding the current replay (a ReplaySignal). Absent: no replay ever, epoch 0. */
export const ReplayEpochKey = 'replay.epoch';

export type ReplayPhase = 'pause' | 'run';

export interface ReplaySignal {
  /** 1 for the first replay of the mesh, then +1 each time. */
  epoch: number;
  /** Where the stages' input restarts: an RFC 3339 time, or 'beginning'. */
  from: string;
  /** pause: stop every partition (keep the leases) and ack; run: consume again. */
  phase: ReplayPhase;
}

/** What an instance writes under replayAckKey once it obeys a phase. */
export interface ReplayAck {
  epoch: number;
  phase: ReplayPhase;
}

/** Prefix of the acks of one stage's instances: `replay.ack.router.`. */
export function replayAckPrefix(stage: Stage): string {
  return `replay.ack.${stage}.`;
}

/** Key in `mesh_checkpoints` where one instance of a stage acks a phase: `replay.ack.router.<instance>`. */
export function replayAckKey(stage: Stage, instanceId: string): string {
  return `${replayAckPrefix(stage)}${instanceId}`;
}

/**
 * The message id of a stage's output in a given epoch. A replay produces
 * again outputs whose ids the streams' duplicate windows still remember
 * (`router:<ingest seq>:<handler>`, `agg:<name>:<key>:<start>`): prefixed with
 * the epoch they are new. Epoch 0 (a mesh never replayed) keeps the ids as
 * they always were.
 */
export function epochMsgId(epoch: number, id: string): string {
  return epoch > 0 ? `e${epoch}:${id}` : id;
}

/** Parse a ReplaySignal as stored; undefined when the value is not one (nothing then changes). */
export function parseReplaySignal(text: string): ReplaySignal | undefined {
  try {
    const v = JSON.parse(text) as Partial<ReplaySignal>;
    if (
      typeof v.epoch === 'number' &&
      Number.isSafeInteger(v.epoch) &&
      v.epoch > 0 &&
      typeof v.from === 'string' &&
      (v.phase === 'pause' || v.phase === 'run')
    ) {
      return { epoch: v.epoch, from: v.from, phase: v.phase };
    }
  } catch {
    // not JSON
  }
  return undefined;
}
