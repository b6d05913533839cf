/**
 * The sink's durable consumer on `KV_mesh_aggregates`, the stream behind the
 * results bucket. Created if missing (as a stage prepares its partition
 * consumers), so `mesh provision` need not know the sink.
 *
 * Why this stream and not MESH_AGGREGATES: the aggregator writes a key's
 * whole result (every window it keeps, open and closed) to `mesh_aggregates`
 * at every change, and publishes on `mesh.aggregates.<name>` only the
 * windows that close. Only the bucket carries every window update, and
 * each of its messages is a complete state, so the newest one is enough:
 * the bucket keeps one message per key (history 1), and a sink that was
 * away finds each key's newest result waiting for it.
 */
import { AckPolicy, DeliverPolicy, JetStreamApiCodes, JetStreamApiError, ReplayPolicy, type ConsumerConfig, type JetStreamManager } from '@nats-io/jetstream';
import { Buckets, kvStream, kvSubject, SinkConsumer } from '@mesh/contracts';

export const ResultsStream = kvStream(Buckets.aggregates);

const nanos = (ms: number) => Math.round(ms * 1_000_000);

export function sinkConsumerConfig(o: { ackWaitMs: number; maxAckPending: number }): Partial<ConsumerConfig> {
  return {
    durable_name: SinkConsumer,
    filter_subject: kvSubject(Buckets.aggregates, '>'),
    ack_policy: AckPolicy.Explicit,
    // Every message the stream holds: with history 1, the newest result of every key.
    deliver_policy: DeliverPolicy.All,
    replay_policy: ReplayPolicy.Instant,
    ack_wait: nanos(o.ackWaitMs),
    max_ack_pending: o.maxAckPending,
    max_deliver: -1,
  };
}

/** Create the consumer, or bring its ack wait and max ack pending in line with the config. */
export async function ensureSinkConsumer(jsm: JetStreamManager, o: { ackWaitMs: number; maxAckPending: number }): Promise<'created' | 'exists'> {
  const config = sinkConsumerConfig(o);
  try {
    const info = await jsm.consumers.info(ResultsStream, SinkConsumer);
    if (info.config.ack_wait !== config.ack_wait || info.config.max_ack_pending !== config.max_ack_pending) {
      await jsm.consumers.update(ResultsStream, SinkConsumer, { ack_wait: config.ack_wait, max_ack_pending: config.max_ack_pending });
    }
    return 'exists';
  } catch (err) {
    if (!(err instanceof JetStreamApiError && err.code === JetStreamApiCodes.ConsumerNotFound)) throw err;
    await jsm.consumers.add(ResultsStream, config);
    return 'created';
  }
}
