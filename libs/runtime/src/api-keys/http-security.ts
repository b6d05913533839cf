/**
 * What a service's listener needs from the security config, checked before
 * it listens: the TLS files (both or neither, readable) and the API key file
 * (readable and valid). A problem is a ConfigError naming the variable, so
 * the service stops at start-up with one clear line instead of serving
 * without the protection it was asked for.
 */
import { readFileSync } from 'node:fs';
import { ConfigError } from '@mesh/config';
import { apiKeyGuard } from './api-key-guard';
import { ApiKeyStore } from './key-store';
import type { HttpApp, TlsFiles } from '../http';
import type { RouteAccess } from './scopes';

export interface HttpSecurityConfig {
  httpTls: { cert: string; key: string };
  apiKeys: { file: string; metricsAuth: string };
}

export interface HttpSecurity {
  tls?: TlsFiles;
  /** Present while API keys are on. */
  keys?: ApiKeyStore;
  /** What /metrics needs. */
  metricsAccess: RouteAccess;
}

function readPem(path: string, env: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new ConfigError([`${env} = ${JSON.stringify(path)} is invalid: the ${what} file cannot be read (${(err as Error).message})`]);
  }
}

export function loadHttpSecurity(config: HttpSecurityConfig): HttpSecurity {
  const { cert, key } = config.httpTls;
  if ((cert === '') !== (key === '')) {
    throw new ConfigError([
      `HTTP_TLS_CERT and HTTP_TLS_KEY go together: give both for HTTPS or neither for HTTP (HTTP_TLS_CERT is ${cert ? 'set' : 'not set'}, HTTP_TLS_KEY is ${key ? 'set' : 'not set'})`,
    ]);
  }
  const tls = cert ? { cert: readPem(cert, 'HTTP_TLS_CERT', 'certificate'), key: readPem(key, 'HTTP_TLS_KEY', 'private key') } : undefined;
  let keys: ApiKeyStore | undefined;
  if (config.apiKeys.file) {
    try {
      keys = ApiKeyStore.load(config.apiKeys.file);
    } catch (err) {
      throw new ConfigError([`MESH_API_KEYS_FILE = ${JSON.stringify(config.apiKeys.file)} is invalid: ${(err as Error).message}`]);
    }
  }
  return { tls, keys, metricsAccess: config.apiKeys.metricsAuth === 'admin' ? 'admin' : 'open' };
}

/** Put the API key guard in front of every route of `http` while keys are on. */
export function guardRoutes(http: HttpApp, security: HttpSecurity): void {
  if (security.keys) http.useGuard(apiKeyGuard(security.keys));
}
