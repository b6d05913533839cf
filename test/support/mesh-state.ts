/**
 * Reading the mesh's state from a test: the dead letters in MESH_DLQ, the
 * partition consumers' ack state and the partitions an instance consumes
 * (totals come from @mesh/testing's totalsOf and totalsFor).
 * Reads only: nothing here creates a durable consumer or changes what the
 * stages see.
 */
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { ConnectionOptions } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { consumerName, stageInput, Streams, type Stage } from '@mesh/contracts';
import { eventually } from '@mesh/testing';

export interface DeadLetterMessage {
  /** Sequence in MESH_DLQ. */
  seq: number;
  subject: string;
  headers: Record<string, string>;
  body: Uint8Array;
  text: string;
}

/**
 * Every message in MESH_DLQ, oldest first, read by sequence with message
 * gets: exact for the few dead letters a test makes, and it sees a deletion
 * (a redrive) at once.
 */
export async function deadLetters(jsm: JetStreamManager): Promise<DeadLetterMessage[]> {
  const { state } = await jsm.streams.info(Streams.dlq);
  const found: DeadLetterMessage[] = [];
  if (state.messages === 0) return found;
  for (let seq = state.first_seq; seq <= state.last_seq; seq++) {
    const m = await jsm.streams.getMessage(Streams.dlq, { seq });
    if (!m) continue;
    const headers: Record<string, string> = {};
    if (m.header) for (const [k, v] of m.header) headers[k] = v.join(',');
    found.push({ seq: m.seq, subject: m.subject, headers, body: m.data, text: Buffer.from(m.data).toString('utf8') });
  }
  return found;
}

export interface ConsumerState {
  name: string;
  numPending: number;
  numAckPending: number;
}

/** Ack state of a stage's durable partition consumers (`processor-p00` ...). */
export async function partitionConsumers(jsm: JetStreamManager, stage: Stage, partitions: number): Promise<ConsumerState[]> {
  const stream = stageInput(stage);
  return Promise.all(
    Array.from({ length: partitions }, async (_, p) => {
      const info = await jsm.consumers.info(stream, consumerName(stage, p));
      return { name: info.name, numPending: info.num_pending, numAckPending: info.num_ack_pending };
    }),
  );
}

/** Whether every consumer has nothing left to deliver and nothing unacknowledged. */
export function allAcked(states: readonly ConsumerState[]): boolean {
  return states.every((c) => c.numPending === 0 && c.numAckPending === 0);
}

/** The partitions a stage instance is consuming now (`GET /v1/partitions`). */
export async function consumingPartitions(serviceUrl: string): Promise<number[]> {
  const res = await fetch(`${serviceUrl}/v1/partitions`);
  if (res.status !== 200) throw new Error(`GET /v1/partitions answered ${res.status}: ${await res.text()}`);
  return ((await res.json()) as { consuming: number[] }).consuming;
}

/**
 * Wait until the mesh is drained: every router, processor and aggregator
 * partition consumer has nothing left to deliver and nothing unacknowledged.
 * Then nothing more will be counted, so totals can be compared exactly.
 * Throws, naming the consumers still pending, when that takes longer than
 * `timeoutMs`.
 * `options`: credentials and TLS, on a secured server (the admin's).
 */
export async function waitUntilDrained(
  natsUrl: string,
  partitions: number,
  timeoutMs: number,
  options: Partial<ConnectionOptions> = {},
  /** In the order events flow; handler services between the router and the aggregator. */
  stages: readonly Stage[] = ['router', 'processor', 'aggregator'],
): Promise<boolean> {
  const nc = await connect({ servers: natsUrl.split(','), ...options });
  try {
    const jsm = await jetstreamManager(nc);
    let states: ConsumerState[][] = [];
    return await eventually(
      async () => {
        // One stage after the other, in the order events flow: a stage acks
        // only after its outputs are stored, so once the router reads drained,
        // everything it forwarded is already in the processor's count, and so
        // on. Read at once, the processor could read empty just before the
        // router's last outputs were stored and the router drained just after.
        states = [];
        for (const stage of stages) {
          const stageStates = await partitionConsumers(jsm, stage, partitions);
          states.push(stageStates);
          if (!allAcked(stageStates)) return false;
        }
        return true;
      },
      timeoutMs,
      250,
      () =>
        `not drained: ${states
          .flat()
          .filter((c) => c.numPending > 0 || c.numAckPending > 0)
          .map((c) => `${c.name} pending ${c.numPending} ack pending ${c.numAckPending}`)
          .join('; ')}`,
    );
  } finally {
    await nc.close();
  }
}

/** The partition consumers that still have something to deliver or to be acked: `processor-p03 pending 2 ack pending 1`. */
export async function undrainedConsumers(natsUrl: string, partitions: number): Promise<string[]> {
  const nc = await connect({ servers: natsUrl.split(',') });
  try {
    const jsm = await jetstreamManager(nc);
    const states = (await Promise.all((['router', 'processor', 'aggregator'] as const).map((s) => partitionConsumers(jsm, s, partitions)))).flat();
    return states.filter((c) => c.numPending > 0 || c.numAckPending > 0).map((c) => `${c.name} pending ${c.numPending} ack pending ${c.numAckPending}`);
  } finally {
    await nc.close();
  }
}
