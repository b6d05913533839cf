import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from './load-config';
import { httpSchema, ingestSchema, meshSchema, natsSchema, shutdownSchema } from './schema';

interface Config {
  nats: { url: string };
  http: { port: number; host: string };
  mesh: { partitions: number; replicas: number; duplicateWindow: number };
  shutdown: { timeout: number };
}

const schema = () => ({ nats: natsSchema(), http: httpSchema(8080), mesh: meshSchema(), shutdown: shutdownSchema() });
const load = (env: NodeJS.ProcessEnv) => loadConfig<Config>(schema(), { env });

/** The ConfigError loading with `env` throws; fails when loading succeeds. */
function configError(env: NodeJS.ProcessEnv): ConfigError {
  try {
    load(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'mesh-config-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function configFile(name: string, content: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

describe('loadConfig', () => {
  // toMatchObject: the shared pieces may gain keys; these must keep their defaults.
  it('gives the defaults when nothing is set, durations in milliseconds', () => {
    expect(load({})).toMatchObject({
      nats: { url: 'nats://127.0.0.1:4222' },
      http: { port: 8080, host: '0.0.0.0' },
      mesh: { partitions: 16, replicas: 1, duplicateWindow: 600_000 },
      shutdown: { timeout: 15_000 },
    });
  });

  it('takes values from environment variables, converted to their kind', () => {
    const config = load({
      NATS_URL: 'nats://a:4222,nats://b:4222',
      HTTP_PORT: '9090',
      HTTP_HOST: '127.0.0.1',
      MESH_PARTITIONS: '4',
      MESH_REPLICAS: '3',
      MESH_DUPLICATE_WINDOW: '30s',
      MESH_SHUTDOWN_TIMEOUT: '250ms',
    });
    expect(config).toMatchObject({
      nats: { url: 'nats://a:4222,nats://b:4222' },
      http: { port: 9090, host: '127.0.0.1' },
      mesh: { partitions: 4, replicas: 3, duplicateWindow: 30_000 },
      shutdown: { timeout: 250 },
    });
  });

  it('accepts port 0, which picks a free port', () => {
    expect(load({ HTTP_PORT: '0' }).http.port).toBe(0);
  });

  it('ignores variables that are not MESH_ variables', () => {
    expect(load({ PATH: '/usr/bin', HOME: '/root' }).mesh.partitions).toBe(16);
  });

  it.each([
    ['HTTP_PORT', '70000', 'http.port', '70000', 'must be a whole number from 0 to 65535'],
    ['MESH_PARTITIONS', 'abc', 'mesh.partitions', '"abc"', 'must be a whole number from 1 to 1024'],
    ['MESH_PARTITIONS', '0', 'mesh.partitions', '0', 'must be a whole number from 1 to 1024'],
    ['NATS_URL', 'http://x', 'nats.url', '"http://x"', 'must be one or more comma-separated NATS URLs such as "nats://127.0.0.1:4222"'],
    ['MESH_DUPLICATE_WINDOW', '5x', 'mesh.duplicateWindow', '"5x"', 'must be a duration such as "250ms", "30s", "10m" or "1h"'],
  ])('refuses %s=%s, naming the variable, the value and what is accepted', (name, value, key, shown, accepted) => {
    const err = configError({ [name]: value });
    expect(err.problems).toEqual([`${name} (${key}) = ${shown} is invalid: ${accepted}`]);
    expect(err.message).toContain(err.problems[0]);
  });

  it('never shows a password written into an invalid NATS_URL', () => {
    const err = configError({ NATS_URL: 'nats://app:s3cret-pw@bad host:4222' });
    expect(err.message).toContain('NATS_URL (nats.url) = "nats://app:***@bad host:4222" is invalid');
    expect(err.message).not.toContain('s3cret-pw');
  });

  it('reads MESH_PROVISION as a boolean and refuses anything else, naming it', () => {
    expect(load({ MESH_PROVISION: 'false' }).mesh).toMatchObject({ provision: false });
    expect(configError({ MESH_PROVISION: 'no' }).message).toMatch(/MESH_PROVISION \(mesh.provision\) = "no" is invalid: must be true or false/);
  });

  it('reports every invalid variable at once', () => {
    const err = configError({ HTTP_PORT: '70000', NATS_URL: 'http://x' });
    expect(err.problems.map((p) => p.split(' ')[0]).sort()).toEqual(['HTTP_PORT', 'NATS_URL']);
  });

  it('refuses an unknown MESH_ variable, naming it and the known ones', () => {
    const err = configError({ MESH_PARTITONS: '4' });
    expect(err.problems).toHaveLength(1);
    expect(err.problems[0]).toMatch(/^unknown environment variable MESH_PARTITONS; known MESH_ variables: .*MESH_PARTITIONS/);
  });

  it("accepts a MESH_ variable of another service's schema without using it", () => {
    expect(load({ MESH_MAX_BODY_BYTES: '5', MESH_KEY_CONCURRENCY: '8' }).mesh.partitions).toBe(16);
  });

  it('validates a variable of another service only when its schema is loaded', () => {
    expect(() => load({ MESH_MAX_BODY_BYTES: 'lots' })).not.toThrow();
    expect(() => loadConfig({ ingest: ingestSchema() }, { env: { MESH_MAX_BODY_BYTES: 'lots' } })).toThrow(
      /MESH_MAX_BODY_BYTES \(ingest.maxBodyBytes\) = "lots" is invalid/,
    );
  });

  describe('with a MESH_CONFIG file', () => {
    it('takes values from the file over the defaults', () => {
      const file = configFile('ok.json', { mesh: { partitions: 8, duplicateWindow: '2m' }, http: { port: 7000 } });
      const config = load({ MESH_CONFIG: file });
      expect(config.mesh).toMatchObject({ partitions: 8, replicas: 1, duplicateWindow: 120_000 });
      expect(config.http.port).toBe(7000);
    });

    it('lets environment variables override the file', () => {
      const file = configFile('overridden.json', { mesh: { partitions: 8 } });
      expect(load({ MESH_CONFIG: file, MESH_PARTITIONS: '2' }).mesh.partitions).toBe(2);
    });

    it('refuses an unknown key in the file, naming it and the known keys', () => {
      const file = configFile('unknown.json', { mesh: { partitons: 8 } });
      const err = configError({ MESH_CONFIG: file });
      expect(err.problems).toHaveLength(1);
      expect(err.problems[0]).toMatch(/^unknown key 'mesh.partitons' in MESH_CONFIG file; known keys: .*mesh\.partitions/);
    });

    it('refuses an invalid value in the file, naming its key and variable', () => {
      const file = configFile('invalid.json', { http: { port: 70000 } });
      expect(configError({ MESH_CONFIG: file }).problems).toEqual(['HTTP_PORT (http.port) = 70000 is invalid: must be a whole number from 0 to 65535']);
    });

    it('refuses a file that is not JSON, naming the file', () => {
      const file = configFile('broken.json', '{ "mesh": ');
      const err = configError({ MESH_CONFIG: file });
      expect(err.problems).toHaveLength(1);
      expect(err.problems[0]).toContain(`MESH_CONFIG = ${JSON.stringify(file)} could not be read as a JSON config file`);
    });

    it('refuses a file that does not exist, naming the file', () => {
      const file = join(dir, 'missing.json');
      expect(configError({ MESH_CONFIG: file }).problems[0]).toContain(`MESH_CONFIG = ${JSON.stringify(file)} could not be read`);
    });
  });
});
