/**
 * Load a service's configuration: defaults, then an optional JSON file named
 * by `MESH_CONFIG`, then environment variables; validated strictly. Anything
 * wrong stops start-up with a ConfigError naming the key, its env variable,
 * the value given and what would be accepted.
 */
import { readFileSync } from 'node:fs';
import convict from 'convict';
import { registerFormats } from './formats';
import { knownEnvNames } from './schema';

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

/** Env variable naming an optional JSON config file. */
export const ConfigFileEnv = 'MESH_CONFIG';

type Schema = Record<string, unknown>;

function envNames(schema: Schema, prefix = ''): Map<string, string> {
  const names = new Map<string, string>();
  for (const [key, value] of Object.entries(schema)) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (value && typeof value === 'object' && 'doc' in value) {
      const env = (value as { env?: string }).env;
      if (env) names.set(path, env);
    } else if (value && typeof value === 'object') {
      for (const [k, v] of envNames(value as Schema, path)) names.set(k, v);
    }
  }
  return names;
}

/** A value shown in an error: never a secret, never a password inside a URL. */
function redactShown(key: string, value: string | undefined, sensitive: Set<string>): string | undefined {
  if (value === undefined) return undefined;
  if (sensitive.has(key)) return '[redacted]';
  return value.replace(/(\b[a-z][a-z0-9+.-]*:\/\/)([^@/\s,]+)@/gi, (_all, scheme: string, info: string) =>
    info.includes(':') ? `${scheme}${info.slice(0, info.indexOf(':'))}:***@` : `${scheme}***@`,
  );
}

function sensitiveKeys(schema: Schema, prefix = ''): Set<string> {
  const keys = new Set<string>();
  for (const [key, value] of Object.entries(schema)) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (value && typeof value === 'object' && 'doc' in value) {
      if ((value as { sensitive?: boolean }).sensitive) keys.add(path);
    } else if (value && typeof value === 'object') for (const k of sensitiveKeys(value as Schema, path)) keys.add(k);
  }
  return keys;
}

function explain(message: string, envByKey: Map<string, string>, values: convict.Config<unknown>, sensitive: Set<string> = new Set()): string[] {
  return message
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      // convict writes "<key>: <problem>: value was <value>" or "configuration param '<key>' not declared in the schema".
      const undeclared = /configuration param '([^']+)' not declared/.exec(line);
      if (undeclared) return `unknown key '${undeclared[1]}' in ${ConfigFileEnv} file; known keys: ${[...envByKey.keys()].join(', ')}`;
      const m = /^([\w.]+): (.*?)(?:: value was (.*))?$/.exec(line.trim());
      if (!m) return line.trim();
      const [, key, problem, given] = m;
      const env = envByKey.get(key);
      let shown = given;
      if (shown === undefined) {
        try {
          shown = JSON.stringify(values.get(key as never));
        } catch {
          shown = '?';
        }
      }
      const shownValue = (k: string, v: string | undefined) => redactShown(k, v, sensitive);
      return `${env ? `${env} (${key})` : key} = ${shownValue(key, shown)} is invalid: ${problem}`;
    });
}

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
}

export function loadConfig<T>(schema: Record<string, unknown>, options: LoadOptions = {}): T {
  registerFormats();
  const env = options.env ?? process.env;
  const envByKey = envNames(schema as Schema);
  const sensitive = sensitiveKeys(schema as Schema);
  const known = new Set([...envByKey.values(), ...knownEnvNames(), ConfigFileEnv]);
  const problems: string[] = [];

  // A misspelt MESH_ variable would otherwise be ignored silently.
  for (const name of Object.keys(env)) {
    if (name.startsWith('MESH_') && !known.has(name)) {
      problems.push(
        `unknown environment variable ${name}; known MESH_ variables: ${[...known]
          .filter((n) => n.startsWith('MESH_'))
          .sort()
          .join(', ')}`,
      );
    }
  }

  let config: convict.Config<T>;
  try {
    config = convict(schema as convict.Schema<T>, { env, args: [] });
  } catch (err) {
    throw new ConfigError([...problems, ...explain((err as Error).message, envByKey, convict({}), sensitive)]);
  }
  const file = env[ConfigFileEnv];
  if (file) {
    try {
      config.load(JSON.parse(readFileSync(file, 'utf8')));
    } catch (err) {
      problems.push(`${ConfigFileEnv} = ${JSON.stringify(file)} could not be read as a JSON config file: ${(err as Error).message}`);
    }
  }
  try {
    config.validate({ allowed: 'strict' });
  } catch (err) {
    problems.push(...explain((err as Error).message, envByKey, config as convict.Config<unknown>, sensitive));
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return config.getProperties();
}
