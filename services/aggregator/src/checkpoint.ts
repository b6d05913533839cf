/**
 * The aggregator's checkpoint of one partition in `mesh_checkpoints`: its
 * windows and the last input sequence applied, so that a new owner resumes
 * exactly where the checkpoint says and counts nothing twice.
 *
 * Small state is one value under `aggregator.pNN` (a `Snapshot`, v1), as
 * before. A state past `inlineMaxBytes` would one day pass the server's
 * max_payload (1 MB: 300 keys of a partition with an hour of one-minute
 * windows) and could no longer be checkpointed at all; it moves to chunks:
 *
 * - the keys are spread over 64 chunks by hash; each chunk has two slots,
 *   `aggregator.pNN.c<CC>.<0|1>`;
 * - a checkpoint writes each chunk with a changed key into the slot the
 *   current head does not point at, then the head (v2: lastSeq, watermarks,
 *   and which slot of each chunk is live, with its revision). The head is
 *   the commit: a crash before it leaves the previous head and its slots
 *   untouched;
 * - every write is compare-and-set on the revision this owner last saw, so
 *   an owner that lost the partition without knowing it fails at its first
 *   write instead of overwriting a live slot of the new owner (and the
 *   partition is reopened, as with the inline head).
 *
 * A checkpoint then costs the chunks that changed, not the whole state.
 */
import type { KV } from '@nats-io/kv';
import { checkpointKey } from '@mesh/contracts';
import { CheckpointChunks, type PartitionWindows, type Snapshot, type SnapshotChunk, type SnapshotMeta } from '@mesh/runtime';

/** Above this size (JSON characters) the state is checkpointed in chunks. */
export const InlineMaxBytes = 256 * 1024;

/** Which slot of a chunk the head points at (-1: the chunk was never written) and the revision the head expects there. */
type LiveSlot = [slot: -1 | 0 | 1, revision: number];

interface ChunkedHead extends SnapshotMeta {
  v: 2;
  chunks: LiveSlot[];
}

/** The head or a chunk does not match what its writer left: something other than the mesh wrote the bucket. */
export class CheckpointCorruptError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CheckpointCorruptError';
  }
}

export interface CheckpointOptions {
  inlineMaxBytes: number;
}

export class AggregatorCheckpoint {
  private readonly head: string;

  private constructor(
    private readonly kv: KV,
    private readonly partition: number,
    private readonly o: CheckpointOptions,
    /** Revision of the head this owner loaded or last wrote (0: none yet). */
    private headRevision: number,
    private chunked: boolean,
    private readonly live: LiveSlot[],
    /** Revision of every slot as this owner last saw it (0: absent), by chunk then slot. */
    private readonly slotRevisions: [number, number][],
  ) {
    this.head = checkpointKey('aggregator', partition);
  }

  private static slotKey(partition: number, chunk: number, slot: 0 | 1): string {
    return `${checkpointKey('aggregator', partition)}.c${String(chunk).padStart(2, '0')}.${slot}`;
  }

  /** Load the partition's checkpoint into `windows` (nothing when there is none). */
  static async load(kv: KV, partition: number, windows: PartitionWindows, options: Partial<CheckpointOptions> = {}): Promise<AggregatorCheckpoint> {
    const o = { inlineMaxBytes: InlineMaxBytes, ...options };
    const head = await kv.get(checkpointKey('aggregator', partition));
    // The slots that exist and their revisions: a later write is
    // compare-and-set on them, the live ones as much as the others.
    const slotRevisions: [number, number][] = Array.from({ length: CheckpointChunks }, () => [0, 0]);
    const existing = new Map<string, [number, 0 | 1]>();
    for (let c = 0; c < CheckpointChunks; c++) for (const slot of [0, 1] as const) existing.set(AggregatorCheckpoint.slotKey(partition, c, slot), [c, slot]);
    const keys: string[] = [];
    for await (const k of await kv.keys(`${checkpointKey('aggregator', partition)}.>`)) if (existing.has(k)) keys.push(k);
    const slots = new Map<string, { revision: number; value?: Uint8Array }>();
    await Promise.all(
      keys.map(async (k) => {
        const e = await kv.get(k);
        if (!e) return;
        const [c, slot] = existing.get(k)!;
        slotRevisions[c][slot] = e.revision;
        slots.set(k, { revision: e.revision, value: e.operation === 'PUT' ? e.value : undefined });
      }),
    );

    const live: LiveSlot[] = Array.from({ length: CheckpointChunks }, () => [-1, 0]);
    let chunked = false;
    if (head && head.operation === 'PUT' && head.length > 0) {
      const saved = head.json<Snapshot | ChunkedHead>();
      if (saved.v === 1) windows.restore(saved);
      else {
        chunked = true;
        windows.restoreMeta(saved);
        saved.chunks.forEach(([slot, revision], c) => {
          live[c] = [slot, revision];
          if (slot === -1) return;
          const key = AggregatorCheckpoint.slotKey(partition, c, slot);
          const entry = slots.get(key);
          if (!entry?.value || entry.revision !== revision) {
            throw new CheckpointCorruptError(`checkpoint chunk ${key} is at revision ${entry?.revision ?? 'none'}, its head expects ${revision}`);
          }
          windows.restoreChunk(JSON.parse(new TextDecoder().decode(entry.value)) as SnapshotChunk);
        });
        windows.trackChunks(false);
      }
    }
    return new AggregatorCheckpoint(kv, partition, o, head?.revision ?? 0, chunked, live, slotRevisions);
  }

  /** Whether the state is checkpointed in chunks. */
  get isChunked(): boolean {
    return this.chunked;
  }

  /**
   * Checkpoint `windows`. Rejects, having committed nothing, if another
   * owner wrote since this one loaded (compare-and-set).
   */
  async save(windows: PartitionWindows): Promise<void> {
    if (!this.chunked) {
      const snapshot = windows.snapshotJson();
      if (snapshot.length <= this.o.inlineMaxBytes) {
        this.headRevision = await this.put(this.head, snapshot, this.headRevision);
        return;
      }
      this.chunked = true;
      windows.trackChunks(true);
    }
    const next = this.live.map((l) => [...l] as LiveSlot);
    await Promise.all(
      windows.takeDirtyChunks().map(async (c) => {
        const slot: 0 | 1 = this.live[c][0] === 0 ? 1 : 0;
        const revision = await this.put(AggregatorCheckpoint.slotKey(this.partition, c, slot), windows.chunkJson(c), this.slotRevisions[c][slot]);
        this.slotRevisions[c][slot] = revision;
        next[c] = [slot, revision];
      }),
    );
    const meta = windows.snapshotMetaJson();
    const head = `{"v":2,${meta.slice(1, -1)},"chunks":${JSON.stringify(next)}}`;
    this.headRevision = await this.put(this.head, head, this.headRevision);
    next.forEach((l, c) => (this.live[c] = l));
  }

  private put(key: string, value: string, revision: number): Promise<number> {
    return revision === 0 ? this.kv.create(key, value) : this.kv.update(key, value, revision);
  }
}
