/**
 * Handlers from outside the build: MESH_HANDLER_MODULES names JS files
 * whose default export is a handler definition (or a list of them). Each is
 * checked like a built-in one; a file that cannot be loaded stops start-up
 * with its path and the reason.
 */
import { resolve } from 'node:path';
import { defineHandler, DefinitionError, type AnyHandlerDefinition } from '@mesh/runtime';

export function loadHandlerModules(list: string): AnyHandlerDefinition[] {
  const paths = list.split(',').map((p) => p.trim()).filter(Boolean);
  const handlers: AnyHandlerDefinition[] = [];
  for (const path of paths) {
    let loaded: unknown;
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      loaded = require(resolve(path));
    } catch (err) {
      throw new DefinitionError('handler module', path, `cannot be loaded (MESH_HANDLER_MODULES): ${(err as Error).message}`);
    }
    const exported = (loaded as { default?: unknown }).default ?? loaded;
    const list = Array.isArray(exported) ? exported : [exported];
    for (const d of list) handlers.push(defineHandler(d as AnyHandlerDefinition));
  }
  return handlers;
}
