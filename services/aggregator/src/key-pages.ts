/**
 * One page of an aggregation's keys, from the key listing of KV
 * `mesh_aggregates` (so a key dropped from memory by retention is still
 * listed: its result stays). Keys come in ascending order (JavaScript string
 * order of the decoded keys); a page after a cursor starts after the key the
 * cursor names, so pages neither repeat nor skip a key that exists
 * throughout, whatever is added meanwhile.
 *
 * A page reads the whole listing of the aggregation's keys in the bucket:
 * its cost grows with the number of keys, not with the page size. It holds
 * only about a page of them at a time.
 */
import type { KV } from '@nats-io/kv';
import { decodeKvToken } from '@mesh/contracts';
import { encodeCursor, type PageQuery } from './query-params';

export interface KeyPage {
  name: string;
  keys: string[];
  /** The cursor of the next page; null on the last page. */
  next: string | null;
}

export async function keyPage(results: KV, name: string, q: PageQuery): Promise<KeyPage> {
  // One token after the name: a key's token never holds a dot (kv-key.ts encodes it).
  const listing = await results.keys(`${name}.*`);
  const prefixLength = name.length + 1;
  let kept: string[] = [];
  // Keep the smallest limit + 1 keys (one more tells whether a next page exists), trimming now and then.
  const trim = () => {
    kept.sort(compare);
    if (kept.length > q.limit + 1) kept = kept.slice(0, q.limit + 1);
  };
  for await (const kvKey of listing) {
    const key = decodeKvToken(kvKey.slice(prefixLength));
    if (!key.startsWith(q.prefix)) continue;
    if (q.after !== undefined && key <= q.after) continue;
    kept.push(key);
    if (kept.length > 4 * (q.limit + 1)) trim();
  }
  trim();
  const more = kept.length > q.limit;
  const keys = kept.slice(0, q.limit);
  return { name, keys, next: more ? encodeCursor(keys[keys.length - 1]) : null };
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
