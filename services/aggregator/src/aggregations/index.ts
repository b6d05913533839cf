/** The aggregations this aggregator keeps. Add yours here; a duplicate name stops start-up. */
import type { AggregationDefinition } from '@mesh/runtime';
import totals from './totals.aggregation';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const aggregations: readonly AggregationDefinition<any, any>[] = [totals];
