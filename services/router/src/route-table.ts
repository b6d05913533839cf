/**
 * The route table: which handlers an event goes to. It is kept in the KV
 * bucket `mesh_routes` and reloaded whenever the bucket changes:
 *
 * - `handler.<name>`: `{"types": [...], "service": "refunds"}`, written by
 *   the handler service hosting it: the default routes (an event goes to
 *   every handler that declares its type), and the service whose subjects
 *   (`mesh.routed.<service>.<p>.<handler>`) carry the handler's events. A
 *   record without `service` is the processor's; so is a handler a rule
 *   names that no service declares.
 * - `rule.<name>`: a rule written by an operator, taking precedence:
 *   `{"match": "order.*", "where": {"source": "shop"}, "priority": 10,
 *     "to": ["orders"] | [{"handler": "orders-v2", "weight": 10}, ...], "drop": false}`
 *   Rules are tried by priority (highest first), then name; the first that
 *   matches decides. Weighted targets pick one handler per event, by a hash of
 *   its `source` + `id`, so a replay picks the same one.
 *
 * An event is routed by its envelope's index (type, source, id) unless a
 * rule that matches its type looks at another attribute in `where`
 * (needsEvent): then the router reads the event itself.
 */
import { fnv1a32, mix32, RouteKeyPrefix, typeMatches, type CloudEvent, type RouteRule } from '@mesh/contracts';

// The rule format is shared with the `mesh routes` CLI, which validates a rule before storing it.
export { parseRule } from '@mesh/contracts';
export type { RouteRule } from '@mesh/contracts';

/** What routing reads of an event: all of it, or its index entry when no rule for its type needs more. */
export type Routable = Pick<CloudEvent, 'type' | 'source' | 'id'>;

/** The attributes an envelope's index gives a rule's `where`. */
const IndexedAttributes: ReadonlySet<string> = new Set(['type', 'source', 'id']);

export type RouteDecision = { kind: 'handlers'; handlers: string[]; rule?: string } | { kind: 'drop'; rule: string } | { kind: 'unroutable' };

export const HandlerKeyPrefix = RouteKeyPrefix.handler;
export const RuleKeyPrefix = RouteKeyPrefix.rule;

export class RouteTable {
  private rules: RouteRule[] = [];
  private handlers = new Map<string, readonly string[]>();
  private services = new Map<string, string>();
  /**
   * Decisions by event type, for types no rule with `where` or weights
   * matches (then the type alone decides). Cleared on every change.
   */
  private byType = new Map<string, RouteDecision>();
  /** needsEvent by event type. Cleared on every change. */
  private needs = new Map<string, boolean>();

  get handlerCount(): number {
    return this.handlers.size;
  }

  setHandler(name: string, types: readonly string[], service = 'processor'): void {
    this.handlers.set(name, types);
    this.services.set(name, service);
    this.changed();
  }

  removeHandler(name: string): void {
    this.handlers.delete(name);
    this.services.delete(name);
    this.changed();
  }

  /** The handler service hosting `handler`: whose subjects carry its events. */
  serviceOf(handler: string): string {
    return this.services.get(handler) ?? 'processor';
  }

  setRule(rule: RouteRule): void {
    this.removeRule(rule.name);
    this.rules.push(rule);
    this.rules.sort((a, b) => b.priority - a.priority || a.name.localeCompare(b.name));
  }

  removeRule(name: string): void {
    this.rules = this.rules.filter((r) => r.name !== name);
    this.changed();
  }

  private changed(): void {
    this.byType.clear();
    this.needs.clear();
  }

  /** Whether routing an event of this type reads attributes its index entry lacks (a rule's `where` names one). */
  needsEvent(type: string): boolean {
    let needs = this.needs.get(type);
    if (needs === undefined) {
      needs = this.rules.some((r) => r.where !== undefined && typeMatches(r.match, type) && Object.keys(r.where).some((k) => !IndexedAttributes.has(k)));
      this.needs.set(type, needs);
    }
    return needs;
  }

  /** Route an event, or its index entry when `needsEvent` says that is enough. */
  route(event: Routable): RouteDecision {
    const known = this.byType.get(event.type);
    if (known) return known;
    const decision = this.decide(event);
    if (this.typeDecides(event.type)) this.byType.set(event.type, decision);
    return decision;
  }

  /** Whether every event of this type gets the same decision: no rule that matches it looks further than the type. */
  private typeDecides(type: string): boolean {
    return this.rules.every((r) => !typeMatches(r.match, type) || (r.where === undefined && r.to.every((t) => t.weight === undefined)));
  }

  private decide(event: Routable): RouteDecision {
    for (const rule of this.rules) {
      if (!typeMatches(rule.match, event.type)) continue;
      if (rule.where && !Object.entries(rule.where).every(([k, v]) => (event as Record<string, unknown>)[k] === v)) continue;
      if (rule.drop) return { kind: 'drop', rule: rule.name };
      return { kind: 'handlers', handlers: pickTargets(rule, event), rule: rule.name };
    }
    const handlers: string[] = [];
    for (const [name, types] of this.handlers) if (types.some((t) => typeMatches(t, event.type))) handlers.push(name);
    return handlers.length > 0 ? { kind: 'handlers', handlers: handlers.sort() } : { kind: 'unroutable' };
  }
}

function pickTargets(rule: RouteRule, event: Routable): string[] {
  const weighted = rule.to.filter((t) => t.weight !== undefined);
  if (weighted.length === 0) return rule.to.map((t) => t.handler);
  const total = weighted.reduce((s, t) => s + (t.weight ?? 0), 0);
  if (total <= 0) return [];
  // A point in [0, total) from the event's identity; weights need not be whole numbers.
  // FNV-1a's high bits barely move with the last characters of an id, so
  // sequential ids (canary-0, canary-1, ...) would all land in one bucket:
  // the hash is mixed first (murmur3's finalizer) so every bit counts.
  let point = (mix32(fnv1a32(`${event.source}\n${event.id}`)) / 2 ** 32) * total;
  for (const t of weighted) {
    point -= t.weight ?? 0;
    if (point < 0) return [t.handler];
  }
  return [weighted[weighted.length - 1].handler];
}
