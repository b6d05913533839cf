/**
 * What an API key may do. A route declares the access it needs; a key
 * carries scopes. `admin` may do everything; `open` routes (health,
 * readiness, by config metrics) need no key at all.
 */
export const Scopes = ['ingest', 'query', 'admin'] as const;
export type Scope = (typeof Scopes)[number];

/** What a route needs: no key (`open`) or a key with this scope (or `admin`). */
export type RouteAccess = 'open' | Scope;

export function isScope(text: string): text is Scope {
  return (Scopes as readonly string[]).includes(text);
}

export function scopeAllows(scopes: readonly Scope[], needed: Scope): boolean {
  return scopes.includes('admin') || scopes.includes(needed);
}
