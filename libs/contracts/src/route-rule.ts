/**
 * An operator's routing rule, as stored in the KV bucket `mesh_routes` under
 * `rule.<name>`, and its validation: the router reads rules with it and the
 * `mesh routes set` command checks a rule with it before storing it, so both
 * accept exactly the same rules.
 *
 *   {"match": "order.*", "where": {"source": "shop"}, "priority": 10,
 *    "to": ["orders"] | [{"handler": "orders-v2", "weight": 10}, ...], "drop": false}
 */
import { typePatternProblem } from './type-pattern';

export interface RouteRule {
  name: string;
  match: string;
  where?: Record<string, string | number | boolean>;
  priority: number;
  to: { handler: string; weight?: number }[];
  drop: boolean;
}

/** Problems of a rule as stored; empty when it is usable. */
export function parseRule(name: string, value: unknown): { rule?: RouteRule; problems: string[] } {
  const problems: string[] = [];
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { problems: ['a rule must be a JSON object'] };
  const r = value as Record<string, unknown>;
  if (typeof r.match !== 'string') problems.push('match must be an event type pattern such as "order.*"');
  else {
    const p = typePatternProblem(r.match);
    if (p) problems.push(`match ${p}`);
  }
  if (r.where !== undefined && (typeof r.where !== 'object' || r.where === null || Array.isArray(r.where))) {
    problems.push('where must be an object of attribute: value');
  }
  if (r.priority !== undefined && typeof r.priority !== 'number') problems.push('priority must be a number');
  const drop = r.drop === true;
  const to: RouteRule['to'] = [];
  if (!drop) {
    if (!Array.isArray(r.to) || r.to.length === 0) problems.push('to must list handler names, or {"handler", "weight"} objects; or set "drop": true');
    else {
      for (const t of r.to) {
        if (typeof t === 'string') to.push({ handler: t });
        else if (typeof t === 'object' && t !== null && typeof (t as { handler?: unknown }).handler === 'string') {
          const w = (t as { weight?: unknown }).weight;
          if (w !== undefined && !(typeof w === 'number' && w >= 0)) problems.push(`weight of ${(t as { handler: string }).handler} must be a number >= 0`);
          to.push({ handler: (t as { handler: string }).handler, weight: w as number | undefined });
        } else problems.push('each entry of to must be a handler name or {"handler": name, "weight": n}');
      }
    }
  }
  const weighted = to.filter((t) => t.weight !== undefined);
  if (weighted.length > 0 && weighted.length < to.length) problems.push('give every entry of to a weight, or none (to fan out to all)');
  if (weighted.length > 0 && weighted.every((t) => t.weight === 0)) problems.push('at least one weight must be above 0');
  if (problems.length > 0) return { problems };
  return {
    problems,
    rule: { name, match: r.match as string, where: r.where as RouteRule['where'], priority: (r.priority as number) ?? 0, to, drop },
  };
}
