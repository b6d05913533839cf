/**
 * Handlers from outside the build: MESH_HANDLER_MODULES names JS files
 * whose default export is a handler definition (or a list of them). Each is
 * checked like a built-in one; a file that cannot be loaded stops start-up
 * with its path and the reason. The files may live anywhere (a mounted
 * volume): their `require('@mesh/runtime')` and of the application's
 * packages resolve as the processor's own (handler-module-resolution.ts).
 */
import { existsSync, realpathSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { DefinitionError } from '../errors';
import { defineHandler, type AnyHandlerDefinition } from '../handler';
import { resolveLikeProcessor } from './handler-module-resolution';

export function loadHandlerModules(list: string): AnyHandlerDefinition[] {
  const paths = list
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  const handlers: AnyHandlerDefinition[] = [];
  for (const path of paths) {
    let loaded: unknown;
    try {
      const file = resolve(path);
      resolveLikeProcessor(dirname(file));
      // Node loads a symlinked file (a ConfigMap's files are) from its real path.
      if (existsSync(file)) resolveLikeProcessor(dirname(realpathSync(file)));
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      loaded = require(file);
    } catch (err) {
      throw new DefinitionError('handler module', path, `cannot be loaded (MESH_HANDLER_MODULES): ${(err as Error).message}`);
    }
    const exported = (loaded as { default?: unknown }).default ?? loaded;
    const list = Array.isArray(exported) ? exported : [exported];
    for (const d of list) handlers.push(defineHandler(d as AnyHandlerDefinition));
  }
  return handlers;
}
