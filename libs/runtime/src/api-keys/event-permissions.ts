/**
 * The events a key may send: a key that lists `sources` or `types` may send
 * only events whose source is listed and whose type matches a listed type
 * (or type pattern such as `order.*`).
 */
import { typeMatches } from '@mesh/contracts';
import type { ApiKeyEntry } from './key-file';

export interface RefusedEvent {
  index: number;
  source: string;
  type: string;
}

export function refusedEvents(key: Pick<ApiKeyEntry, 'sources' | 'types'>, events: readonly { source: string; type: string }[]): RefusedEvent[] {
  if (!key.sources && !key.types) return [];
  const refused: RefusedEvent[] = [];
  events.forEach((e, index) => {
    const sourceOk = !key.sources || key.sources.includes(e.source);
    const typeOk = !key.types || key.types.some((p) => typeMatches(p, e.type));
    if (!sourceOk || !typeOk) refused.push({ index, source: e.source, type: e.type });
  });
  return refused;
}
