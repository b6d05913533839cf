/**
 * The aggregator's work on one partition. Its state is checkpointed in
 * `mesh_checkpoints` with the last input sequence applied; an input at or
 * below it (a redelivery after a crash) is skipped, so every event counts
 * once. Per batch: apply, write the changed results to `mesh_aggregates`,
 * publish closed windows and late events, then checkpoint; the runner acks
 * after.
 */
import type { JetStreamClient } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import { aggregateKvKey, checkpointKey, encodeEnvelope, Subjects } from '@mesh/contracts';
import type { InputEnvelope, PartitionWorker } from '@mesh/runtime';
import { headers as natsHeaders } from '@nats-io/nats-core';
import { PartitionWindows, type Snapshot } from './window-state';

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
  checkpoints: KV;
  windows: PartitionWindows;
  counters: AggregatorCounters;
}

export async function loadWindows(checkpoints: KV, partition: number, create: () => PartitionWindows): Promise<PartitionWindows> {
  const windows = create();
  const saved = await checkpoints.get(checkpointKey('aggregator', partition));
  if (saved && saved.operation === 'PUT' && saved.length > 0) windows.restore(saved.json<Snapshot>());
  return windows;
}

export function aggregatorWorker(d: AggregatorWorkerDeps): PartitionWorker {
  const { js, windows, counters } = d;
  return {
    async handle(batch: InputEnvelope[]) {
      const late: Promise<unknown>[] = [];
      for (const env of batch) {
        if (env.seq <= windows.lastSeq) {
          counters.skipped += env.events.length;
          continue;
        }
        env.events.forEach((event, index) => {
          counters.applied++;
          for (const name of windows.apply(event, env.timestampMs)) {
            counters.late++;
            const h = natsHeaders();
            h.set('Mesh-Late-Watermark', new Date(windows.watermark(name)).toISOString());
            late.push(js.publish(Subjects.aggregatesLate(name), encodeEnvelope([event]), { msgID: `late:${name}:${env.seq}:${index}`, headers: h }));
          }
        });
        windows.lastSeq = env.seq;
      }
      const closed = windows.closeDue();
      counters.closed += closed.length;
      const writes = windows.takeDirty().map((r) => d.results.put(aggregateKvKey(r.name, r.key), JSON.stringify(r)));
      const emits = closed.map(({ name, key, cell }) =>
        js.publish(
          Subjects.aggregates(name),
          JSON.stringify({ name, key, start: new Date(cell.start).toISOString(), end: new Date(cell.end).toISOString(), ...cell.acc }),
          { msgID: `agg:${name}:${key}:${cell.start}` },
        ),
      );
      await Promise.all([...writes, ...emits, ...late]);
      await d.checkpoints.put(checkpointKey('aggregator', d.partition), JSON.stringify(windows.snapshot()));
    },
  };
}
