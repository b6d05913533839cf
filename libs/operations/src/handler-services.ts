/**
 * The stages of a running mesh as the CLI and the console find them: the router, every
 * handler service (the processor, and each service named by a handler record
 * in mesh_routes or by a live member in mesh_members), and the aggregator.
 */
import { JetStreamApiCodes } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { Buckets, isHandlerService, kvStream, kvSubject, parseHandlerRecord, RouteKeyPrefix, type HandlerRecord } from '@mesh/contracts';
import { isNotFound, type MeshContext } from './mesh-context';

/** A bucket, or undefined when the mesh has none (not provisioned). */
export async function openBucket(ctx: MeshContext, name: string): Promise<KV | undefined> {
  const kv = await new Kvm(ctx.nc).open(name);
  try {
    await kv.status();
    return kv;
  } catch (err) {
    if (isNotFound(err, JetStreamApiCodes.StreamNotFound)) return undefined;
    throw err;
  }
}

/**
 * The keys of a bucket (matching `filter`) that have a message, live or a
 * delete marker, sorted: one stream info request. A key listing through the
 * client creates a consumer each time, and nats-server 2.9 can leave one
 * that never delivers when its keys are rewritten meanwhile (a busy
 * mesh_members, whose members heartbeat every few hundred ms), which stalled
 * `mesh replay` for a minute under load.
 */
export async function bucketKeys(ctx: MeshContext, bucket: string, filter = '>'): Promise<string[]> {
  const info = await ctx.jsm.streams.info(kvStream(bucket), { subjects_filter: kvSubject(bucket, filter) });
  const prefix = kvSubject(bucket, '');
  return Object.keys(info.state.subjects ?? {})
    .map((subject) => subject.slice(prefix.length))
    .sort();
}

/** Every handler record in mesh_routes, by handler name. */
export async function handlerRecords(ctx: MeshContext): Promise<Map<string, HandlerRecord>> {
  const out = new Map<string, HandlerRecord>();
  const kv = await openBucket(ctx, Buckets.routes);
  if (!kv) return out;
  const keys: string[] = [];
  for await (const k of await kv.keys(`${RouteKeyPrefix.handler}>`)) keys.push(k);
  for (const key of keys.sort()) {
    const e = await kv.get(key);
    const record = e?.operation === 'PUT' ? parseHandlerRecord(e.string()) : undefined;
    if (record) out.set(key.slice(RouteKeyPrefix.handler.length), record);
  }
  return out;
}

/** A live member: `<stage>.<instance>` in mesh_members, and what it advertises. */
export interface Member {
  stage: string;
  instance: string;
  handlers: string[];
}

export async function liveMembers(ctx: MeshContext): Promise<Member[]> {
  const kv = await openBucket(ctx, Buckets.members);
  if (!kv) return [];
  const members: Member[] = [];
  for (const key of await bucketKeys(ctx, Buckets.members)) {
    const dot = key.indexOf('.');
    if (dot < 1) continue;
    const e = await kv.get(key);
    if (!e || e.operation !== 'PUT') continue;
    let handlers: string[] = [];
    try {
      const v = e.json() as { handlers?: unknown };
      if (Array.isArray(v.handlers)) handlers = v.handlers.filter((h): h is string => typeof h === 'string');
    } catch {
      // an entry that is not JSON still names a live member
    }
    members.push({ stage: key.slice(0, dot), instance: key.slice(dot + 1), handlers });
  }
  return members;
}

/** Every handler service known to the mesh, the processor first. */
export async function knownHandlerServices(ctx: MeshContext): Promise<string[]> {
  const found = new Set<string>(['processor']);
  for (const r of (await handlerRecords(ctx)).values()) found.add(r.service);
  for (const m of await liveMembers(ctx)) if (isHandlerService(m.stage)) found.add(m.stage);
  return ['processor', ...[...found].filter((s) => s !== 'processor').sort()];
}

/** Every stage with partition consumers: router, the handler services, aggregator. */
export async function allStages(ctx: MeshContext): Promise<string[]> {
  return ['router', ...(await knownHandlerServices(ctx)), 'aggregator'];
}
