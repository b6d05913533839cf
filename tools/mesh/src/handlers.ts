/**
 * `mesh handlers`: every handler declared in mesh_routes, the service that
 * hosts it, its types, the live instances of that service (and how many of
 * them host the handler: fewer during a rolling update), and the service's
 * lag (num_pending + num_ack_pending over its `<service>-pNN` consumers).
 *
 * `mesh handlers rm <name> --yes`: removes `handler.<name>`. The router stops
 * routing to it at once; the events already routed to it that wait (an
 * instance without it owns their partition) are dead-lettered with the
 * reason "handler '<name>' was removed with mesh handlers rm" by that
 * instance within a second or two (when no instance of the service runs,
 * by the next one that starts). Nothing removes a record otherwise: a service that stops, or an
 * older version without the handler, leaves it in place.
 */
import { Kvm } from '@nats-io/kv';
import { Buckets, consumerName, RouteKeyPrefix, Streams } from '@mesh/contracts';
import type { CommandContext } from './context';
import { CliError, UsageError } from './errors';
import { handlerRecords, liveMembers, recordedPartitions } from '@mesh/operations';
import { formatTable, printable } from './output';

export interface HandlerRow {
  handler: string;
  service: string;
  types: string[];
  description: string;
  /** Live instances of the service. */
  instances: string[];
  /** Of those, the ones that host this handler. */
  hosting: string[];
  /** Messages of the service's consumers not yet done; null when it has no consumer yet. */
  lag: number | null;
}

const HandlerName = /^[a-z0-9][a-z0-9_-]{0,63}$/;

export function checkHandlerName(name: string): string {
  if (!HandlerName.test(name)) throw new UsageError(`invalid handler name '${name}'; use 1 to 64 lowercase letters, digits, '-' or '_'`);
  return name;
}

async function serviceLag(ctx: CommandContext, service: string, partitions: number): Promise<number | null> {
  const names = new Set(Array.from({ length: partitions }, (_, p) => consumerName(service, p)));
  let lag: number | null = null;
  for await (const ci of ctx.jsm.consumers.list(Streams.routed)) {
    if (!names.has(ci.name)) continue;
    lag = (lag ?? 0) + ci.num_pending + ci.num_ack_pending;
  }
  return lag;
}

export async function handlerRows(ctx: CommandContext): Promise<HandlerRow[]> {
  const partitions = await recordedPartitions(ctx);
  if (partitions === undefined) throw new CliError(`the mesh at ${ctx.natsUrl} is not provisioned (no partition count in ${Buckets.checkpoints})`);
  const records = await handlerRecords(ctx);
  const members = await liveMembers(ctx);
  const lags = new Map<string, number | null>();
  for (const r of records.values()) if (!lags.has(r.service)) lags.set(r.service, await serviceLag(ctx, r.service, partitions));
  return [...records].map(([handler, r]) => {
    const of = members.filter((m) => m.stage === r.service);
    return {
      handler,
      service: r.service,
      types: r.types,
      description: r.description,
      instances: of.map((m) => m.instance),
      hosting: of.filter((m) => m.handlers.includes(handler)).map((m) => m.instance),
      lag: lags.get(r.service) ?? null,
    };
  });
}

export async function handlersList(ctx: CommandContext): Promise<void> {
  const rows = await handlerRows(ctx);
  if (ctx.json) {
    ctx.out.out(JSON.stringify({ handlers: rows }, null, 2));
    return;
  }
  if (rows.length === 0) {
    ctx.out.err(`no handlers in ${Buckets.routes}: no handler service has started yet`);
    return;
  }
  const table = rows.map((r) => [
    printable(r.handler),
    printable(r.service),
    printable(r.types.join(',')),
    // "2 (1 hosting)" shows a rolling update under way: instances without the handler.
    r.hosting.length === r.instances.length ? String(r.instances.length) : `${r.instances.length} (${r.hosting.length} hosting)`,
    r.lag === null ? '-' : String(r.lag),
  ]);
  for (const line of formatTable(['HANDLER', 'SERVICE', 'TYPES', 'INSTANCES', 'LAG'], table)) ctx.out.out(line);
}

export async function handlersRemove(ctx: CommandContext, o: { name: string; yes: boolean }): Promise<void> {
  const kv = await new Kvm(ctx.nc).open(Buckets.routes);
  const key = `${RouteKeyPrefix.handler}${o.name}`;
  const current = await kv.get(key);
  if (!current || current.operation !== 'PUT') throw new CliError(`no handler '${o.name}' in ${Buckets.routes} (mesh handlers lists them)`);
  const what =
    `remove handler '${o.name}' (${Buckets.routes} ${key}): the routers stop routing to it at once, and its events that wait for a host ` +
    `are dead-lettered with the reason "handler '${o.name}' was removed with mesh handlers rm"`;
  if (!o.yes) {
    ctx.out.err(`would ${what}; run again with --yes to do it`);
    throw new UsageError(`'mesh handlers rm' changes nothing without --yes`);
  }
  // A delete, not a purge: the marker tells the handler services the handler was removed.
  await kv.delete(key);
  if (ctx.json) ctx.out.out(JSON.stringify({ removed: key }));
  else ctx.out.out(`removed handler '${o.name}'; a service that still hosts it declares it again when it restarts`);
}
