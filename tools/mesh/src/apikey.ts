/**
 * `mesh apikey create | ls | revoke`: edit the API key file the services
 * read. The key itself exists only in create's output; the file keeps its
 * hash. No NATS connection is needed.
 */
import { generateKey, KeyFileError, readKeyFile, writeKeyFile, type ApiKeyEntry } from '@mesh/runtime';
import type { ApiKeyInvocation } from './apikey-argv';
import { CliError } from './errors';
import { formatTable, type Output } from './output';

async function load(file: string, missingIsEmpty: boolean) {
  try {
    return await readKeyFile(file, { missingIsEmpty });
  } catch (err) {
    throw new CliError(err instanceof KeyFileError ? err.message : String(err));
  }
}

async function save(file: string, keys: ApiKeyEntry[]): Promise<void> {
  try {
    await writeKeyFile(file, { version: 1, keys });
  } catch (err) {
    throw new CliError((err as Error).message);
  }
}

/** What may be shown of a key: never the key or its hash. */
function publicView(k: ApiKeyEntry) {
  return { name: k.name, id: k.id, scopes: k.scopes, sources: k.sources ?? null, types: k.types ?? null, created: k.created };
}

export async function runApiKeyCommand(inv: ApiKeyInvocation, out: Output): Promise<void> {
  switch (inv.command) {
    case 'apikey create': {
      const file = await load(inv.file, true);
      if (file.keys.some((k) => k.name === inv.name)) {
        throw new CliError(`an API key named '${inv.name}' already exists in ${inv.file}; choose another name or revoke it first`);
      }
      const key = generateKey();
      const entry: ApiKeyEntry = {
        id: key.id,
        name: inv.name,
        scopes: inv.scopes,
        ...(inv.sources ? { sources: inv.sources } : {}),
        ...(inv.types ? { types: inv.types } : {}),
        hash: key.hash,
        created: new Date().toISOString(),
      };
      await save(inv.file, [...file.keys, entry]);
      if (inv.json) {
        out.out(JSON.stringify({ ...publicView(entry), file: inv.file, key: key.secret }));
        return;
      }
      out.out(`created API key '${entry.name}' (id ${entry.id}) in ${inv.file}`);
      out.out(`  scopes   ${entry.scopes.join(', ')}`);
      out.out(`  sources  ${entry.sources?.join(', ') ?? 'any'}`);
      out.out(`  types    ${entry.types?.join(', ') ?? 'any'}`);
      out.out("The key follows on the last line. It is shown only this once: store it now, and send it as 'Authorization: Bearer <key>'.");
      out.out(key.secret);
      return;
    }
    case 'apikey ls': {
      const file = await load(inv.file, false);
      if (inv.json) {
        out.out(JSON.stringify({ file: inv.file, keys: file.keys.map(publicView) }, null, 2));
        return;
      }
      if (file.keys.length === 0) {
        out.err(`no API keys in ${inv.file}; add one with 'mesh apikey create'`);
        return;
      }
      const rows = file.keys.map((k) => [k.name, k.id, k.scopes.join(','), k.sources?.join(',') ?? 'any', k.types?.join(',') ?? 'any', k.created]);
      for (const line of formatTable(['NAME', 'ID', 'SCOPES', 'SOURCES', 'TYPES', 'CREATED'], rows)) out.out(line);
      return;
    }
    case 'apikey revoke': {
      const file = await load(inv.file, false);
      const kept = file.keys.filter((k) => k.name !== inv.name);
      if (kept.length === file.keys.length) {
        const known = file.keys.map((k) => k.name);
        throw new CliError(`no API key named '${inv.name}' in ${inv.file}; ${known.length > 0 ? `known: ${known.join(', ')}` : 'the file has no keys'}`);
      }
      await save(inv.file, kept);
      if (inv.json) out.out(JSON.stringify({ revoked: inv.name, file: inv.file }));
      else out.out(`revoked API key '${inv.name}' in ${inv.file}; running services refuse it once they reload the file (about a second)`);
      return;
    }
  }
}
