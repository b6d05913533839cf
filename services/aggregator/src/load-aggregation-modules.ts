/**
 * Aggregations from outside the build: MESH_AGGREGATION_MODULES names JS
 * files whose default export is an aggregation definition (or a list of
 * them), as MESH_HANDLER_MODULES does for the processor. Each is checked like
 * a built-in one; a file that cannot be loaded stops start-up with its path
 * and the reason.
 */
import { resolve } from 'node:path';
import { defineAggregation, DefinitionError, type AggregationDefinition } from '@mesh/runtime';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyAggregation = AggregationDefinition<any, any>;

export function loadAggregationModules(list: string): AnyAggregation[] {
  const paths = list
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  const found: AnyAggregation[] = [];
  for (const path of paths) {
    let loaded: unknown;
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      loaded = require(resolve(path));
    } catch (err) {
      throw new DefinitionError('aggregation module', path, `cannot be loaded (MESH_AGGREGATION_MODULES): ${(err as Error).message}`);
    }
    const exported = (loaded as { default?: unknown }).default ?? loaded;
    const list = Array.isArray(exported) ? exported : [exported];
    for (const d of list) found.push(defineAggregation(d as AnyAggregation));
  }
  return found;
}
