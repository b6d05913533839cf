/**
 * `mesh routes ls|set|rm`: the route table in KV `mesh_routes`, without the
 * `nats` CLI. `ls` shows the handlers' declared types (`handler.<name>`,
 * written by the services that host them) and the operators' rules
 * (`rule.<name>`), each rule checked as the router checks it; `set` refuses a
 * rule the router would ignore, naming every problem, and stores nothing;
 * `rm` removes a rule. The router reloads the table on every change. The
 * table itself is read and written by '@mesh/operations', as the console does.
 */
import { readFileSync } from 'node:fs';
import { Buckets, RouteKeyPrefix } from '@mesh/contracts';
import { removeRule, routeEntries, storeRule } from '@mesh/operations';
import type { CommandContext } from './context';
import { UsageError } from './errors';
import { formatTable, printable } from './output';

export { checkRuleName } from '@mesh/operations';

export async function routesList(ctx: CommandContext): Promise<void> {
  const all = (await routeEntries(ctx)).map(({ kind, name, value, problems }) => ({ kind, name, value, problems }));
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
  const { revision, rule } = await storeRule(ctx, o.name, value);
  if (ctx.json) ctx.out.out(JSON.stringify({ stored: `${RouteKeyPrefix.rule}${o.name}`, revision, rule }, null, 2));
  else ctx.out.out(`stored rule '${o.name}' (${Buckets.routes} ${RouteKeyPrefix.rule}${o.name}, revision ${revision}); the routers apply it now`);
}

export async function routesRemove(ctx: CommandContext, name: string): Promise<void> {
  const { key } = await removeRule(ctx, name);
  if (ctx.json) ctx.out.out(JSON.stringify({ removed: key }));
  else ctx.out.out(`removed rule '${name}'; the routers stop applying it now`);
}
