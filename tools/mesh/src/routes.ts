/**
 * `mesh routes ls|set|rm`: the route table in KV `mesh_routes`, without the
 * `nats` CLI. `ls` shows the handlers' declared types (`handler.<name>`,
 * written by the services that host them) and the operators' rules
 * (`rule.<name>`), each rule checked as the router checks it; `set` refuses a
 * rule the router would ignore, naming every problem, and stores nothing;
 * `rm` removes a rule. The router reloads the table on every change.
 */
import { readFileSync } from 'node:fs';
import { Kvm, type KV } from '@nats-io/kv';
import { Buckets, parseRule, RouteKeyPrefix } from '@mesh/contracts';
import { isNotFound, type CommandContext } from './context';
import { JetStreamApiCodes } from '@nats-io/jetstream';
import { CliError, UsageError } from './errors';
import { formatTable, printable } from './output';

/** Letters, digits, '_' and '-': one KV key token. */
const RuleName = /^[A-Za-z0-9_-]{1,64}$/;

export function checkRuleName(name: string): string {
  if (!RuleName.test(name)) throw new UsageError(`invalid rule name '${name}'; use 1 to 64 letters, digits, '_' or '-'`);
  return name;
}

async function routesBucket(ctx: CommandContext): Promise<KV> {
  try {
    return await new Kvm(ctx.nc).open(Buckets.routes);
  } catch (err) {
    if (isNotFound(err, JetStreamApiCodes.StreamNotFound)) {
      throw new CliError(`bucket ${Buckets.routes} not found at ${ctx.natsUrl}; the mesh is not provisioned there (mesh provision creates it)`);
    }
    throw err;
  }
}

interface RouteEntry {
  kind: 'handler' | 'rule';
  name: string;
  value: unknown;
  /** Why the router ignores it; empty when it is used. */
  problems: string[];
}

async function entries(kv: KV): Promise<RouteEntry[]> {
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
    if (key.startsWith(RouteKeyPrefix.handler)) out.push({ kind: 'handler', name: key.slice(RouteKeyPrefix.handler.length), value, problems: [] });
    else if (key.startsWith(RouteKeyPrefix.rule)) {
      const name = key.slice(RouteKeyPrefix.rule.length);
      out.push({ kind: 'rule', name, value, problems: parseRule(name, value).problems });
    }
  }
  return out;
}

export async function routesList(ctx: CommandContext): Promise<void> {
  const all = await entries(await routesBucket(ctx));
  if (ctx.json) {
    ctx.out.out(JSON.stringify({ routes: all }, null, 2));
    return;
  }
  if (all.length === 0) {
    ctx.out.err(`no routes in ${Buckets.routes}: no service has declared handlers yet and there are no rules`);
    return;
  }
  const rows = all.map((r) => {
    const shown = printable(JSON.stringify(r.value));
    return [
      r.kind,
      r.name,
      r.problems.length > 0 ? `ignored: ${r.problems.join('; ')} (a router keeps the last valid version of this rule, if any)` : 'ok',
      shown,
    ];
  });
  for (const line of formatTable(['KIND', 'NAME', 'STATE', 'VALUE'], rows)) ctx.out.out(line);
}

export async function routesSet(ctx: CommandContext, o: { name: string; rule?: string; file?: string }): Promise<void> {
  let text = o.rule;
  if (o.file !== undefined) {
    try {
      text = readFileSync(o.file, 'utf8');
    } catch (err) {
      throw new UsageError(`cannot read the rule file ${o.file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  let value: unknown;
  try {
    value = JSON.parse(text ?? '');
  } catch (err) {
    throw new UsageError(`the rule is not JSON (${(err as Error).message}); give an object such as '{"match":"order.*","to":["orders"]}'`);
  }
  const { rule, problems } = parseRule(o.name, value);
  if (!rule) throw new UsageError(`rule '${o.name}' is refused and nothing was stored: ${problems.join('; ')}`);
  const kv = await routesBucket(ctx);
  const revision = await kv.put(`${RouteKeyPrefix.rule}${o.name}`, JSON.stringify(value));
  if (ctx.json) ctx.out.out(JSON.stringify({ stored: `${RouteKeyPrefix.rule}${o.name}`, revision, rule }, null, 2));
  else ctx.out.out(`stored rule '${o.name}' (${Buckets.routes} ${RouteKeyPrefix.rule}${o.name}, revision ${revision}); the routers apply it now`);
}

export async function routesRemove(ctx: CommandContext, name: string): Promise<void> {
  const kv = await routesBucket(ctx);
  const key = `${RouteKeyPrefix.rule}${name}`;
  const current = await kv.get(key);
  if (!current || current.operation !== 'PUT') throw new CliError(`no rule '${name}' in ${Buckets.routes} (mesh routes ls lists them)`);
  await kv.delete(key);
  if (ctx.json) ctx.out.out(JSON.stringify({ removed: key }));
  else ctx.out.out(`removed rule '${name}'; the routers stop applying it now`);
}
