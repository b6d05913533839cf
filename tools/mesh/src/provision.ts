/**
 * `mesh provision`: what an admin runs once (and again after an upgrade) so
 * that services can start with MESH_PROVISION=false and least-privilege
 * credentials: the streams, the buckets, the recorded partition count and
 * every stage's partition consumers. Idempotent.
 */
import { ConfigError, consumerSchema, loadConfig, meshSchema } from '@mesh/config';
import { Stages } from '@mesh/contracts';
import { knownHandlerServices } from '@mesh/operations';
import { ensurePartitionConsumers, provisionMesh, type Provisioned } from '@mesh/messaging';
import type { ProvisionArgs } from './argv';
import type { CommandContext } from './context';
import { CliError } from './errors';
import { formatTable } from './output';

interface Settings {
  mesh: { partitions: number; replicas: number; duplicateWindow: number; leaseTtl: number };
  consumer: { maxAckPending: number; ackWait: number };
}

/** The same MESH_* settings, validated the same way, as the services read. */
function settings(env: Readonly<Record<string, string | undefined>>): Settings {
  const mesh = meshSchema();
  const consumer = consumerSchema();
  const schema = {
    mesh: { partitions: mesh.partitions, replicas: mesh.replicas, duplicateWindow: mesh.duplicateWindow, leaseTtl: mesh.leaseTtl },
    consumer: { maxAckPending: consumer.maxAckPending, ackWait: consumer.ackWait },
  };
  try {
    return loadConfig<Settings>(schema, { env: env as NodeJS.ProcessEnv });
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(err.problems.join('; '));
    throw err;
  }
}

export async function provision(ctx: CommandContext, args: ProvisionArgs, env: Readonly<Record<string, string | undefined>>): Promise<void> {
  const s = settings(env);
  const partitions = args.partitions ?? s.mesh.partitions;
  const done: Provisioned[] = await provisionMesh(ctx.nc, {
    partitions,
    replicas: args.replicas ?? s.mesh.replicas,
    duplicateWindowMs: s.mesh.duplicateWindow,
    leaseTtlMs: s.mesh.leaseTtl,
  });
  // The built-in stages, every handler service the mesh knows of (handler records, live members) and those named.
  const stages = [...new Set([...Stages, ...(await knownHandlerServices(ctx)), ...(args.handlerServices ?? [])])];
  for (const stage of stages) {
    done.push(...(await ensurePartitionConsumers(ctx.nc, stage, partitions, { maxAckPending: s.consumer.maxAckPending, ackWaitMs: s.consumer.ackWait })));
  }
  if (ctx.json) {
    ctx.out.out(JSON.stringify({ natsUrl: ctx.natsUrl, partitions, provisioned: done }, null, 2));
    return;
  }
  const rows = done.filter((d) => d.kind !== 'consumer').map((d) => [d.kind, d.name, d.action]);
  const consumers = done.filter((d) => d.kind === 'consumer');
  const created = consumers.filter((c) => c.action === 'created').length;
  rows.push([
    'consumers',
    `${consumers.length} (${stages.join(', ')} x ${partitions} partitions)`,
    `${created} created, ${consumers.length - created} updated`,
  ]);
  for (const line of formatTable(['KIND', 'NAME', 'DONE'], rows)) ctx.out.out(line);
  ctx.out.err(`the mesh is provisioned at ${ctx.natsUrl} with ${partitions} partitions`);
}
