/**
 * Queries answered by the owner of a key's partition, over NATS
 * request/reply on `mesh.query.aggregator.<p>`.
 *
 * - Owner side (`serve`): while this instance consumes a partition it
 *   subscribes to the partition's subject and answers from the partition's
 *   live state (PartitionResults.answer), checking its lease at the moment
 *   it replies; `stop` unsubscribes, after the partition's last batch
 *   (its results written) and before its lease is released, so a new
 *   owner never answers while the old one still does.
 * - Asking side (`ask`): any instance, for `GET /v1/aggregates/:name/:key`.
 *   No responder (nobody owns the partition: it is moving), no answer in
 *   time (the owner is stalled) or an answer `kv` all mean: read KV
 *   `mesh_aggregates`, which holds everything an owner ever answered.
 *
 * Only aggregations keyed by the partition key (no `key` function) are
 * asked: for them the key names its partition. A key made by a `key`
 * function could come from any partition; such results are read from KV.
 * `mesh_result_reads_total{source,reason}` counts where reads came from.
 */
import type { Msg, NatsConnection, Subscription } from '@nats-io/nats-core';
import { headers as natsHeaders, RequestError } from '@nats-io/nats-core';
import { Headers, partitionOf, Subjects } from '@mesh/contracts';
import type { AggregationDefinition, Logger } from '@mesh/runtime';
import type { MeshInstruments } from '@mesh/telemetry';
import type { PartitionResults } from './partition-results';

/** How long an asker waits for the owner before it reads KV (an owner answering waits at most for a few puts). */
export const QueryTimeoutMs = 2_000;

export interface ResultQueriesOptions {
  partitions: number;
  log: Logger;
  metrics?: Pick<MeshInstruments, 'resultReads'>;
}

interface Served {
  sub: Subscription;
  owned: PartitionResults;
}

/** Whether the instance may answer for the partition right now: it holds the lease, and the run that opened `owned` is still the partition's. */
export type MayAnswer = () => boolean;

export class ResultQueries {
  private readonly served = new Map<number, Served>();
  private readonly empty = new Uint8Array(0);

  constructor(
    private readonly nc: NatsConnection,
    private readonly o: ResultQueriesOptions,
  ) {}

  /** Answer the partition's queries from `owned` (replacing what answered them before). */
  serve(partition: number, owned: PartitionResults, mayAnswer: MayAnswer): void {
    this.stop(partition);
    const sub = this.nc.subscribe(Subjects.query('aggregator', partition), {
      callback: (err, msg) => {
        if (err) return this.o.log.warn('result queries of a partition stopped', { partition, error: err });
        void this.answer(owned, mayAnswer, msg);
      },
    });
    this.served.set(partition, { sub, owned });
  }

  /** Stop answering the partition's queries: askers read KV until its next owner serves them. */
  stop(partition: number): void {
    const s = this.served.get(partition);
    if (!s) return;
    this.served.delete(partition);
    s.owned.close();
    s.sub.unsubscribe();
  }

  stopAll(): void {
    for (const p of [...this.served.keys()]) this.stop(p);
  }

  private async answer(owned: PartitionResults, mayAnswer: MayAnswer, msg: Msg): Promise<void> {
    let result: string | undefined;
    try {
      const q = msg.json<{ name?: unknown; key?: unknown }>();
      if (typeof q.name === 'string' && typeof q.key === 'string') result = await owned.answer(q.name, q.key);
    } catch {
      // Not a query: say `kv`, the answer that is always right.
    }
    // Checked last: the lease may have lapsed (a stalled process) while the answer waited.
    if (owned.isClosed || !mayAnswer()) result = undefined;
    const h = natsHeaders();
    h.set(Headers.queryAnswer, result === undefined ? 'kv' : 'result');
    msg.respond(result === undefined ? this.empty : result, { headers: h });
  }

  /** The key's result from the owner of its partition; undefined: read KV. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  async ask(aggregation: AggregationDefinition<any, any>, key: string): Promise<string | undefined> {
    const { name } = aggregation;
    // A key function may map keys of any partition to this key: no one owner to ask.
    if (aggregation.key) return this.fromKv('key-function');
    let reply: Msg;
    try {
      reply = await this.nc.request(Subjects.query('aggregator', partitionOf(key, this.o.partitions)), JSON.stringify({ name, key }), {
        timeout: QueryTimeoutMs,
      });
    } catch (err) {
      // No responders: the partition is moving. Otherwise its owner stalled, or NATS is away (KV says which).
      return this.fromKv(err instanceof RequestError && err.isNoResponders() ? 'no-owner' : 'no-answer');
    }
    if (reply.headers?.get(Headers.queryAnswer) !== 'result') return this.fromKv('owner-said');
    this.o.metrics?.resultReads.add(1, { source: 'owner' });
    return reply.string();
  }

  private fromKv(reason: 'key-function' | 'no-owner' | 'no-answer' | 'owner-said'): undefined {
    this.o.metrics?.resultReads.add(1, { source: 'kv', reason });
    return undefined;
  }
}
