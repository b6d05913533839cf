/**
 * Resolution of the packages a handler module from MESH_HANDLER_MODULES
 * requires. Node resolves a bare `require('@mesh/runtime')` from the
 * requiring file's directory upwards; a file mounted outside the
 * application (say /etc/mesh/handlers/refunds.js in a container) finds no
 * node_modules there and fails. For modules under the directories of the
 * listed handler files:
 *   - `@mesh/*` always resolves to the processor's own copy, so the handler
 *     shares the runtime instance (and its classes) the processor uses,
 *     even if a copy sits beside the handler;
 *   - any other bare name resolves as usual first (a handler may bring its
 *     own node_modules), then from the processor's location (the
 *     application's dependencies).
 * Every other module of the process resolves exactly as before.
 *
 * Node 20 and 22.12 (the image) have no public synchronous hook for
 * `require` (module.registerHooks arrives in 22.15), hence the wrap of
 * Module._resolveFilename, the hook module-alias and tsconfig-paths use.
 */
import Module, { createRequire } from 'node:module';
import { sep } from 'node:path';

type ResolveFilename = (request: string, parent: { filename?: string | null } | undefined, isMain: boolean, options?: unknown) => string;
interface ModuleInternals {
  _resolveFilename: ResolveFilename;
}

const processorRequire = createRequire(__filename);
const handlerDirs = new Set<string>();
let installed = false;

function isBare(request: string): boolean {
  return !request.startsWith('.') && !request.startsWith('/') && !request.startsWith('node:') && !Module.isBuiltin(request);
}

function fromHandlerDir(parent: { filename?: string | null } | undefined): boolean {
  const file = parent?.filename;
  if (!file) return false;
  for (const dir of handlerDirs) if (file.startsWith(dir)) return true;
  return false;
}

/** Lets the modules under `dir` (absolute) resolve `@mesh/*` and the application's packages as the processor does. */
export function resolveLikeProcessor(dir: string): void {
  handlerDirs.add(dir.endsWith(sep) ? dir : dir + sep);
  if (installed) return;
  installed = true;
  const internals = Module as unknown as ModuleInternals;
  const original = internals._resolveFilename;
  internals._resolveFilename = function resolveFilename(request, parent, isMain, options) {
    if (!isBare(request) || !fromHandlerDir(parent)) return original.call(this, request, parent, isMain, options);
    if (request.startsWith('@mesh/')) return processorRequire.resolve(request);
    try {
      return original.call(this, request, parent, isMain, options);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw err;
      try {
        return processorRequire.resolve(request);
      } catch {
        // Not the application's either: the handler's own error names its directory.
        throw err;
      }
    }
  };
}
