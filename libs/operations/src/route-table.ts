/**
 * The route table in KV `mesh_routes`: the handlers' declared types
 * (`handler.<name>`, written by the services that host them) and the
 * operators' rules (`rule.<name>`). Every rule is checked as the router
 * checks it (parseRule from the contracts): storing refuses a rule the
 * router would ignore, naming every problem, and stores nothing. The router
 * reloads the table on every change.
 */
import { JetStreamApiCodes } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { Buckets, parseRule, RouteKeyPrefix, type RouteRule } from '@mesh/contracts';
import { InvalidRequestError, OperationError } from './errors';
import { isNotFound, type MeshContext } from './mesh-context';

/** Letters, digits, '_' and '-': one KV key token. */
const RuleName = /^[A-Za-z0-9_-]{1,64}$/;

export function checkRuleName(name: string): string {
  if (!RuleName.test(name)) throw new InvalidRequestError(`invalid rule name '${name}'; use 1 to 64 letters, digits, '_' or '-'`);
  return name;
}

export interface RouteEntry {
  kind: 'handler' | 'rule';
  name: string;
  value: unknown;
  /** Why the router ignores it; empty when it is used. */
  problems: string[];
  revision: number;
}

export async function routesBucket(ctx: MeshContext): Promise<KV> {
  try {
    return await new Kvm(ctx.nc).open(Buckets.routes);
  } catch (err) {
    if (isNotFound(err, JetStreamApiCodes.StreamNotFound)) {
      throw new OperationError(`bucket ${Buckets.routes} not found at ${ctx.natsUrl}; the mesh is not provisioned there (mesh provision creates it)`);
    }
    throw err;
  }
}

/** Every entry of the table, handlers and rules, sorted by key. */
export async function routeEntries(ctx: MeshContext): Promise<RouteEntry[]> {
  const kv = await routesBucket(ctx);
  const out: RouteEntry[] = [];
  const keys: string[] = [];
  for await (const k of await kv.keys()) keys.push(k);
  for (const key of keys.sort()) {
    const e = await kv.get(key);
    if (!e || e.operation !== 'PUT') continue;
    let value: unknown;
    try {
      value = e.json();
    } catch {
      value = e.string();
    }
    if (key.startsWith(RouteKeyPrefix.handler)) {
      out.push({ kind: 'handler', name: key.slice(RouteKeyPrefix.handler.length), value, problems: [], revision: e.revision });
    } else if (key.startsWith(RouteKeyPrefix.rule)) {
      const name = key.slice(RouteKeyPrefix.rule.length);
      out.push({ kind: 'rule', name, value, problems: parseRule(name, value).problems, revision: e.revision });
    }
  }
  return out;
}

/** A rule as the router reads it, or an InvalidRequestError naming every problem. Stores nothing. */
export function validateRule(name: string, value: unknown): RouteRule {
  checkRuleName(name);
  const { rule, problems } = parseRule(name, value);
  if (!rule) throw new InvalidRequestError(`rule '${name}' is refused and nothing was stored: ${problems.join('; ')}`);
  return rule;
}

/** Check a rule as the router would, then store it; the routers apply it at once. */
export async function storeRule(ctx: MeshContext, name: string, value: unknown): Promise<{ key: string; revision: number; rule: RouteRule }> {
  const rule = validateRule(name, value);
  const kv = await routesBucket(ctx);
  const key = `${RouteKeyPrefix.rule}${name}`;
  const revision = await kv.put(key, JSON.stringify(value));
  return { key, revision, rule };
}

/** Remove an operator's rule; an OperationError when there is none. */
export async function removeRule(ctx: MeshContext, name: string): Promise<{ key: string }> {
  checkRuleName(name);
  const kv = await routesBucket(ctx);
  const key = `${RouteKeyPrefix.rule}${name}`;
  const current = await kv.get(key);
  if (!current || current.operation !== 'PUT') throw new OperationError(`no rule '${name}' in ${Buckets.routes} (mesh routes ls lists them)`);
  await kv.delete(key);
  return { key };
}
