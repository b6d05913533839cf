/**
 * The handlers declared for one handler service in `mesh_routes` (records
 * whose `service` is it), kept current by a watch, and the partition
 * assignment that follows from them: partitions go to the instances that
 * host every declared handler. In a rolling update that adds a handler, the
 * new instances take the partitions at once and the old ones give theirs
 * up, instead of holding the new handler's events waiting until they stop.
 * When no live instance hosts them all (a record left by a version that is
 * gone), every instance is eligible, and events of a handler nobody hosts
 * wait (processor-worker.ts) until one does or `mesh handlers rm` removes it.
 */
import { Kvm, type KvWatchEntry } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/nats-core';
import { Buckets, parseHandlerRecord, RouteKeyPrefix } from '@mesh/contracts';
import type { Logger } from '../logger';

export class DeclaredHandlers {
  private readonly declared = new Set<string>();
  private stopWatch?: () => void;

  constructor(private readonly service: string) {}

  /** Start watching; resolves at once (until the first records arrive, nothing is declared: every instance is eligible). */
  async start(nc: NatsConnection, log: Logger): Promise<void> {
    const kv = await new Kvm(nc).open(Buckets.routes);
    const watch = await kv.watch({ key: `${RouteKeyPrefix.handler}>` });
    this.stopWatch = () => watch.stop();
    void (async () => {
      for await (const e of watch) this.apply(e);
    })().catch((err) => log.warn('handler records watch ended', { error: err }));
  }

  private apply(e: KvWatchEntry): void {
    const name = e.key.slice(RouteKeyPrefix.handler.length);
    const record = e.operation === 'PUT' ? parseHandlerRecord(e.string()) : undefined;
    if (record?.service === this.service) this.declared.add(name);
    else this.declared.delete(name);
  }

  /** Handler names declared for the service now. */
  names(): string[] {
    return [...this.declared].sort();
  }

  /** The members that host every declared handler (eligibleMembers). */
  eligible(live: readonly string[], advertised: ReadonlyMap<string, Record<string, unknown>>): string[] {
    return eligibleMembers(this.declared, live, advertised);
  }

  stop(): void {
    this.stopWatch?.();
  }
}

/**
 * The live members whose advertised `handlers` include every declared one. A
 * member not heard from yet (no entry) or that advertises no list counts as
 * hosting them all: the safe guess is today's assignment, never an idle mesh.
 */
export function eligibleMembers(declared: ReadonlySet<string>, live: readonly string[], advertised: ReadonlyMap<string, Record<string, unknown>>): string[] {
  if (declared.size === 0) return [...live];
  return live.filter((m) => {
    const handlers = advertised.get(m)?.handlers;
    if (!Array.isArray(handlers)) return true;
    return [...declared].every((h) => handlers.includes(h));
  });
}
