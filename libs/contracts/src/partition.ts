/**
 * Partitioning: `p = fnv1a32(partitionkey) % P`, the same function as
 * nats-server's `partition(n, ...)` subject mapping, so server-side mappings
 * and the mesh agree on where a key lives.
 */
import type { CloudEvent } from './cloud-event';

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;
const utf8 = new TextEncoder();

/** FNV-1a 32-bit over the UTF-8 bytes of `text`. */
export function fnv1a32(text: string): number {
  // Keys are mostly ASCII, whose UTF-8 bytes are the char codes: hashing
  // them directly saves encoding a buffer per event (4% of the processor).
  let hash = FNV_OFFSET;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x80) return fnv1a32Utf8(text);
    hash ^= c;
    hash = Math.imul(hash, FNV_PRIME);
  }
  return hash >>> 0;
}

function fnv1a32Utf8(text: string): number {
  let hash = FNV_OFFSET;
  const bytes = utf8.encode(text);
  for (let i = 0; i < bytes.length; i++) {
    hash ^= bytes[i];
    hash = Math.imul(hash, FNV_PRIME);
  }
  return hash >>> 0;
}

export function partitionOf(key: string, partitions: number): number {
  return fnv1a32(key) % partitions;
}

/** The partitioning key of an event: `partitionkey`, else `subject`, else `source`. */
export function partitionKeyOf(event: Pick<CloudEvent, 'partitionkey' | 'subject' | 'source'>): string {
  return event.partitionkey ?? event.subject ?? event.source;
}

/**
 * murmur3's 32-bit finalizer: spreads every input bit over the whole result.
 * FNV-1a's high bits barely move with a key's last characters; where a hash
 * is scaled to a range (weighted routes) or used as a fingerprint, mix it.
 */
export function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
