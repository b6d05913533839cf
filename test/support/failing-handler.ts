/**
 * A handler module for MESH_HANDLER_MODULES that always throws a plain Error
 * (not retryable), so every event it takes is dead-lettered at once.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const FailingHandlerName = 'boom';
export const FailingEventType = 'boom.happened';

export interface HandlerModule {
  /** The file to name in MESH_HANDLER_MODULES. */
  readonly path: string;
  remove(): void;
}

export function writeFailingHandler(): HandlerModule {
  const dir = mkdtempSync(join(tmpdir(), 'mesh-handler-'));
  const path = join(dir, 'boom.handler.js');
  writeFileSync(path, `module.exports = { name: '${FailingHandlerName}', types: ['${FailingEventType}'], handle() { throw new Error('boom'); } };\n`);
  return { path, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
