/** The command lines of `mesh apikey ...`, parsed into what to run (see argv.ts). */
import { typePatternProblem } from '@mesh/contracts';
import { isScope, keyNameProblem, Scopes, sourceProblem, type Scope } from '@mesh/runtime';
import type { ApiKeyCommandName } from './apikey-commands';
import { UsageError } from './errors';
import { oneOf } from './output';

export type ApiKeyInvocation =
  | { command: 'apikey create'; json: boolean; file: string; name: string; scopes: Scope[]; sources?: string[]; types?: string[] }
  | { command: 'apikey ls'; json: boolean; file: string }
  | { command: 'apikey revoke'; json: boolean; file: string; name: string };

export function isApiKeyCommand(name: string): name is ApiKeyCommandName {
  return name.startsWith('apikey ');
}

function list(flag: string, text: string, check: (item: string) => string | undefined): string[] {
  const items = text.split(',').map((s) => s.trim());
  if (items.some((s) => s === '')) throw new UsageError(`${flag} '${text}' has an empty item; give a comma-separated list such as a,b`);
  for (const item of items) {
    const problem = check(item);
    if (problem) throw new UsageError(`invalid ${flag.slice(2, -1)} '${item}' in ${flag}: ${problem}`);
  }
  return [...new Set(items)];
}

function keyName(text: string, where: string): string {
  const problem = keyNameProblem(text);
  if (problem) throw new UsageError(`invalid key name '${text}' (${where}): it ${problem}`);
  return text;
}

export function parseApiKeyArgs(
  name: ApiKeyCommandName,
  rest: readonly string[],
  value: (flag: string) => string | undefined,
  env: Readonly<Record<string, string | undefined>>,
  json: boolean,
): ApiKeyInvocation {
  const file = value('--file') ?? env.MESH_API_KEYS_FILE;
  if (!file) throw new UsageError(`missing --file <path>: name the API key file (or set MESH_API_KEYS_FILE)`);
  if (name !== 'apikey revoke' && rest.length > 0) throw new UsageError(`unexpected argument '${rest[0]}' for 'mesh ${name}'; it takes none`);
  switch (name) {
    case 'apikey create': {
      const given = value('--name');
      if (given === undefined) throw new UsageError("missing --name <name>: every key has a name (used by 'mesh apikey ls' and 'revoke')");
      const scopesText = value('--scopes');
      if (scopesText === undefined) throw new UsageError(`missing --scopes <list>: give one or more of ${oneOf(Scopes)}, comma-separated`);
      const scopes = list('--scopes', scopesText, (s) => (isScope(s) ? undefined : `unknown scope; use ${oneOf(Scopes)}`)) as Scope[];
      const sourcesText = value('--sources');
      const typesText = value('--types');
      return {
        command: name,
        json,
        file,
        name: keyName(given, '--name'),
        scopes,
        ...(sourcesText !== undefined ? { sources: list('--sources', sourcesText, sourceProblem) } : {}),
        ...(typesText !== undefined ? { types: list('--types', typesText, typePatternProblem) } : {}),
      };
    }
    case 'apikey ls':
      return { command: name, json, file };
    case 'apikey revoke': {
      if (rest.length !== 1)
        throw new UsageError(`'mesh apikey revoke' takes one <name>, got ${rest.length === 0 ? 'none' : `${rest.length}: ${rest.join(' ')}`}`);
      return { command: name, json, file, name: keyName(rest[0], '<name>') };
    }
  }
}
