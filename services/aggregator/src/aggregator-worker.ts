/**
 * The aggregator's work on one partition. Its state is checkpointed in
 * `mesh_checkpoints` with the last input sequence applied; an input at or
 * below it (a redelivery after a crash) is skipped, so every event counts
 * once. Per batch: apply; publish closed windows and late events (their ids
 * make that idempotent); checkpoint (compare-and-set); write the changed
 * results to `mesh_aggregates`. The runner acks after.
 */
import type { JetStreamClient } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import { aggregateKvKey, encodeEnvelope, epochMsgId, Subjects } from '@mesh/contracts';
import { endEventSpan, faultPoint, startEventSpan, type InputEnvelope, type PartitionWindows, type PartitionWorker } from '@mesh/runtime';
import type { Span } from '@opentelemetry/api';
import { headers as natsHeaders } from '@nats-io/nats-core';
import { AggregatorCheckpoint, type CheckpointOptions } from './checkpoint';

export interface AggregatorCounters {
  applied: number;
  skipped: number;
  late: number;
  closed: number;
}

export interface AggregatorWorkerDeps {
  js: JetStreamClient;
  partition: number;
  results: KV;
  windows: PartitionWindows;
  /** Where `windows` came from, and where they are saved after every batch. */
  checkpoint: AggregatorCheckpoint;
  counters: AggregatorCounters;
  /** Throws unless this instance still holds the partition's lease (see StageRunnerOptions.open). */
  ensureLease?(): void;
  /** Replay epoch the partition was opened in (0: never replayed): a replay publishes the same windows again, under new ids. */
  epoch?: number;
}

/**
 * Open a partition: load its checkpoint, then write the results of the
 * restored state to `mesh_aggregates` before anything else. The previous owner
 * may have checkpointed and died before writing its results (or a result may
 * have been lost or overwritten since); rewriting them here, not on the
 * partition's next batch, repairs them even if no event ever comes again.
 */
export async function loadWindows(
  checkpoints: KV,
  results: KV,
  partition: number,
  create: () => PartitionWindows,
  options: Partial<CheckpointOptions> = {},
): Promise<{ windows: PartitionWindows; checkpoint: AggregatorCheckpoint }> {
  const windows = create();
  const checkpoint = await AggregatorCheckpoint.load(checkpoints, partition, windows, options);
  windows.markAllDirty();
  await writeResults(results, windows);
  return { windows, checkpoint };
}

/** Put the result of every key whose windows changed since the last call. */
async function writeResults(results: KV, windows: PartitionWindows): Promise<void> {
  await Promise.all(windows.takeDirtyJson().map((r) => results.put(aggregateKvKey(r.name, r.key), r.json)));
}

export function aggregatorWorker(d: AggregatorWorkerDeps): PartitionWorker {
  const { js, windows, counters, checkpoint } = d;
  const epoch = d.epoch ?? 0;
  const consumerGroup = `aggregator-p${String(d.partition).padStart(2, '0')}`;
  return {
    async handle(batch: InputEnvelope[]) {
      const late: Promise<unknown>[] = [];
      const spans: Span[] = [];
      for (const env of batch) {
        if (env.seq <= windows.lastSeq) {
          counters.skipped += env.events.length;
          continue;
        }
        env.events.forEach((event, index) => {
          counters.applied++;
          const span = startEventSpan(event, {
            destination: env.subject,
            messageId: event.id,
            partition: d.partition,
            batchSize: env.events.length,
            consumerGroup,
          });
          if (span) spans.push(span);
          for (const name of windows.apply(event, env.timestampMs)) {
            counters.late++;
            const h = natsHeaders();
            h.set('Mesh-Late-Watermark', new Date(windows.watermark(name)).toISOString());
            late.push(
              js.publish(Subjects.aggregatesLate(name), encodeEnvelope([event]), { msgID: epochMsgId(epoch, `late:${name}:${env.seq}:${index}`), headers: h }),
            );
          }
        });
        windows.lastSeq = env.seq;
      }
      let failure: unknown;
      try {
        const closed = windows.closeDue();
        counters.closed += closed.length;
        // Idempotent first (ids derived from the window or the input), so a
        // crash before the checkpoint only repeats them.
        const emits = closed.map(({ name, key, cell }) =>
          js.publish(
            Subjects.aggregates(name),
            JSON.stringify({ name, key, start: new Date(cell.start).toISOString(), end: new Date(cell.end).toISOString(), ...cell.acc }),
            { msgID: epochMsgId(epoch, `agg:${name}:${key}:${cell.start}`) },
          ),
        );
        await Promise.all([...emits, ...late]);
        // Compare-and-set on what this worker loaded or last wrote: if another
        // owner wrote since, this fails and the partition is reopened from
        // that checkpoint instead of overwriting it.
        await checkpoint.save(windows);
        faultPoint('after-checkpoint', { stage: 'aggregator', partition: d.partition, seqs: batch.map((e) => e.seq) });
        // Results are plain puts: an owner that paused after its checkpoint (and
        // lost the lease meanwhile) would overwrite the new owner's newer
        // results with older ones. Found by test/frozen-owner.e2e.spec.ts.
        d.ensureLease?.();
        // Results last: only an owner whose checkpoint was accepted, and that still holds the lease, writes them.
        // A crash between the two is repaired by the next owner, which rewrites
        // every result of the partition when it opens (loadWindows).
        await writeResults(d.results, windows);
      } catch (err) {
        failure = err;
        throw err;
      } finally {
        for (const span of spans) endEventSpan(span, failure);
      }
    },
  };
}
