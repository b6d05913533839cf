import { ConfigError, loadConfig } from './load-config';
import { apiKeysSchema, httpTlsSchema, inFlightSchema, knownEnvNames, rateLimitSchema } from './schema';

const schema = () => ({ httpTls: httpTlsSchema(), apiKeys: apiKeysSchema(), rateLimit: rateLimitSchema(), inFlight: inFlightSchema() });
const load = (env: NodeJS.ProcessEnv) => loadConfig<Record<string, Record<string, unknown>>>(schema(), { env });

function problems(env: NodeJS.ProcessEnv): string[] {
  try {
    load(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

describe('the security schema pieces', () => {
  it('default to keys off, plain HTTP, no rate limit and a bounded in-flight', () => {
    expect(load({})).toEqual({
      httpTls: { cert: '', key: '' },
      apiKeys: { file: '', metricsAuth: 'open' },
      rateLimit: { events: 0, bytes: 0, burst: 1000 },
      inFlight: { events: 20_000, bytes: 16 * 1024 * 1024 },
    });
  });

  it('read their env variables', () => {
    const config = load({
      MESH_API_KEYS_FILE: '/etc/mesh/keys.json',
      MESH_METRICS_AUTH: 'admin',
      HTTP_TLS_CERT: 'c.pem',
      HTTP_TLS_KEY: 'k.pem',
      MESH_RATE_LIMIT_EVENTS: '500',
      MESH_RATE_LIMIT_BYTES: '0',
      MESH_RATE_LIMIT_BURST: '5s',
      MESH_MAX_IN_FLIGHT_EVENTS: '10',
      MESH_MAX_IN_FLIGHT_BYTES: '2048',
    });
    expect(config).toEqual({
      httpTls: { cert: 'c.pem', key: 'k.pem' },
      apiKeys: { file: '/etc/mesh/keys.json', metricsAuth: 'admin' },
      rateLimit: { events: 500, bytes: 0, burst: 5000 },
      inFlight: { events: 10, bytes: 2048 },
    });
  });

  it.each([
    [{ MESH_RATE_LIMIT_EVENTS: '-1' }, /MESH_RATE_LIMIT_EVENTS \(rateLimit.events\) = "-1" is invalid: must be a whole number from 0/],
    [{ MESH_RATE_LIMIT_BURST: '0s' }, /MESH_RATE_LIMIT_BURST \(rateLimit.burst\) = .* is invalid: must be a duration above zero/],
    [{ MESH_MAX_IN_FLIGHT_BYTES: '0' }, /MESH_MAX_IN_FLIGHT_BYTES \(inFlight.bytes\) = .* is invalid: must be a whole number from 1/],
    [{ MESH_METRICS_AUTH: 'closed' }, /MESH_METRICS_AUTH \(apiKeys.metricsAuth\) = "closed" is invalid/],
  ])('refuse %j naming the variable', (env, problem) => {
    expect(problems(env).join('\n')).toMatch(problem);
  });

  it('are known to every service, so a shared environment never trips the unknown-variable check', () => {
    for (const name of [
      'MESH_API_KEYS_FILE',
      'MESH_METRICS_AUTH',
      'HTTP_TLS_CERT',
      'HTTP_TLS_KEY',
      'MESH_RATE_LIMIT_EVENTS',
      'MESH_RATE_LIMIT_BYTES',
      'MESH_RATE_LIMIT_BURST',
      'MESH_MAX_IN_FLIGHT_EVENTS',
      'MESH_MAX_IN_FLIGHT_BYTES',
    ]) {
      expect(knownEnvNames()).toContain(name);
    }
  });
});
