/**
 * processor: the mesh's first handler service. It runs the handlers in
 * `handlers/` (and MESH_HANDLER_MODULES) on its partitions of MESH_ROUTED and
 * publishes what they emit to MESH_PROCESSED; at start it declares its
 * handlers in `mesh_routes`, the router's default routes. Every team's
 * handler service is the same runtime with its own name (runHandlerService).
 */
import { runHandlerService } from '@mesh/runtime';
import { handlers } from './handlers';

void runHandlerService({ name: 'processor', handlers, httpPort: 8082 });
