/**
 * The middleware between a matched route and its handler while API keys
 * are on: a route's declared access decides, so no handler checks keys.
 * 401 for a missing or unknown key (with a Bearer challenge), 403 for a key
 * without the scope, 400 for a header that is not a bearer token at all.
 */
import type { IncomingMessage } from 'node:http';
import type { Guard, GuardVerdict } from '../http';
import { bearerToken } from './bearer-token';
import type { ApiKeyStore } from './key-store';
import { scopeAllows, type RouteAccess } from './scopes';

export function apiKeyGuard(store: ApiKeyStore): Guard {
  return (req: IncomingMessage, access: RouteAccess, what: string): GuardVerdict => {
    const address = req.socket.remoteAddress ?? 'unknown';
    if (access === 'open') return { ok: true, caller: { address } };
    const parsed = bearerToken(req.headers.authorization);
    if (parsed.kind === 'bad') return { ok: false, status: parsed.status, error: parsed.error, headers: { 'www-authenticate': parsed.challenge } };
    if (parsed.kind === 'none') {
      return {
        ok: false,
        status: 401,
        error: `${what} needs an API key with the ${access} scope: send 'Authorization: Bearer <key>'`,
        headers: { 'www-authenticate': 'Bearer' },
      };
    }
    const key = store.verify(parsed.token);
    if (!key) {
      return {
        ok: false,
        status: 401,
        error: 'the API key is not valid (unknown, revoked or mistyped)',
        headers: { 'www-authenticate': 'Bearer error="invalid_token"' },
      };
    }
    if (!scopeAllows(key.scopes, access)) {
      return {
        ok: false,
        status: 403,
        error: `the API key '${key.name}' has the scope(s) ${key.scopes.join(', ')}; ${what} needs ${access} (or admin)`,
        headers: { 'www-authenticate': `Bearer error="insufficient_scope", scope="${access}"` },
      };
    }
    return { ok: true, caller: { address, key } };
  };
}
