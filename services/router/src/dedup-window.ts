/**
 * Remembers the `source` + `id` of the events one partition has seen within
 * the duplicate window, by stream time, so an event sent twice (in another
 * request, another format, through another ingest) is routed once.
 *
 * An id is a duplicate while it was last seen within the window: every copy,
 * also one called a duplicate, refreshes its time. So decisions depend only on
 * the copies stored in the last window (their order and timestamps), and the
 * window a new owner rebuilds from the stream's last window before its ack
 * floor decides exactly as the lost one would have, even for an id sent again
 * and again (with first-copy times, a rebuilt window would start from a later
 * copy and disagree once the first copy's window had passed).
 *
 * Memory: an id is kept as a 64-bit fingerprint (two 32-bit hash lanes) and
 * its time, in typed arrays: a ring in stream order (the oldest first, so
 * expiry pops from the front) and an open-addressing index into it. About 24
 * bytes per id (up to twice that while a table has room to grow), against
 * about 150 for a Map of strings. Two different events share a fingerprint
 * with probability about n² / 2^65 for n ids in one partition's window (one
 * in 30 million for a million ids); the later of the two would be taken for
 * a duplicate.
 */
import { mix32 } from '@mesh/contracts';

export class DedupWindow {
  private hi: Uint32Array;
  private lo: Uint32Array;
  private at: Float64Array;
  /** Ring position of the oldest id. */
  private head = 0;
  /** Ring positions in use, including those of ids seen again since (dead: their time is NaN). */
  private count = 0;
  private dead = 0;
  /** Ring position + 1 of the id whose fingerprint hashes here; 0 = empty. */
  private index: Int32Array;

  constructor(
    private readonly windowMs: number,
    private readonly minCapacity = 1024,
  ) {
    this.hi = new Uint32Array(minCapacity);
    this.lo = new Uint32Array(minCapacity);
    this.at = new Float64Array(minCapacity);
    this.index = new Int32Array(minCapacity * 2);
  }

  /** Ids remembered. */
  get size(): number {
    return this.count - this.dead;
  }

  /** Bytes held by the window's arrays. */
  get bytes(): number {
    return this.hi.byteLength + this.lo.byteLength + this.at.byteLength + this.index.byteLength;
  }

  static keyOf(source: string, id: string): string {
    return `${source.length}:${source}${id}`;
  }

  /** True when the key was seen within the window before `atMs`; records it (again, at `atMs`) either way. */
  seen(key: string, atMs: number): boolean {
    this.expire(atMs);
    const [h, l] = fingerprint(key);
    const mask = this.index.length - 1;
    let slot = l & mask;
    for (let r = this.index[slot]; r !== 0; r = this.index[slot]) {
      if (this.hi[r - 1] === h && this.lo[r - 1] === l) {
        if (atMs > this.at[r - 1]) this.refresh(r - 1, atMs);
        return true;
      }
      slot = (slot + 1) & mask;
    }
    this.append(h, l, atMs);
    return false;
  }

  /** Seen again later: the old ring entry dies, a new one at the back keeps the ring in time order. */
  private refresh(pos: number, atMs: number): void {
    const [h, l] = [this.hi[pos], this.lo[pos]];
    this.unindex(pos);
    this.at[pos] = Number.NaN;
    this.dead++;
    this.append(h, l, atMs);
  }

  private append(h: number, l: number, atMs: number): void {
    // Full: grow while mostly live, else compact the dead entries away (amortised O(1) either way).
    if (this.count === this.hi.length) this.resize(this.size >= this.hi.length / 2 ? this.hi.length * 2 : this.hi.length);
    this.insert(h, l, atMs);
  }

  private insert(h: number, l: number, atMs: number): void {
    const pos = (this.head + this.count) & (this.hi.length - 1);
    this.hi[pos] = h;
    this.lo[pos] = l;
    this.at[pos] = atMs;
    this.place(pos);
    this.count++;
  }

  private place(pos: number): void {
    const mask = this.index.length - 1;
    let slot = this.lo[pos] & mask;
    while (this.index[slot] !== 0) slot = (slot + 1) & mask;
    this.index[slot] = pos + 1;
  }

  private expire(nowMs: number): void {
    const oldest = nowMs - this.windowMs;
    const ringMask = this.hi.length - 1;
    while (this.count > 0 && (Number.isNaN(this.at[this.head]) || this.at[this.head] < oldest)) {
      if (Number.isNaN(this.at[this.head])) this.dead--;
      else this.unindex(this.head);
      this.head = (this.head + 1) & ringMask;
      this.count--;
    }
    if (this.hi.length > this.minCapacity && this.size < this.hi.length / 8) this.resize(this.hi.length / 2);
  }

  /** Remove ring position `pos` from the index (linear probing, backward-shift deletion: no tombstones). */
  private unindex(pos: number): void {
    const mask = this.index.length - 1;
    let i = this.lo[pos] & mask;
    while (this.index[i] !== pos + 1) i = (i + 1) & mask;
    let j = i;
    for (;;) {
      j = (j + 1) & mask;
      const r = this.index[j];
      if (r === 0) break;
      const home = this.lo[r - 1] & mask;
      // Move the entry at j back to i unless its home lies cyclically in (i, j].
      const stays = i <= j ? home > i && home <= j : home > i || home <= j;
      if (!stays) {
        this.index[i] = r;
        i = j;
      }
    }
    this.index[i] = 0;
  }

  /** New arrays of `capacity` ids, the live ring laid out from position 0 in stream order (dead entries dropped). */
  private resize(capacity: number): void {
    const hi = new Uint32Array(capacity);
    const lo = new Uint32Array(capacity);
    const at = new Float64Array(capacity);
    const ringMask = this.hi.length - 1;
    let n = 0;
    for (let k = 0; k < this.count; k++) {
      const from = (this.head + k) & ringMask;
      if (Number.isNaN(this.at[from])) continue;
      hi[n] = this.hi[from];
      lo[n] = this.lo[from];
      at[n] = this.at[from];
      n++;
    }
    this.hi = hi;
    this.lo = lo;
    this.at = at;
    this.head = 0;
    this.count = n;
    this.dead = 0;
    this.index = new Int32Array(capacity * 2);
    for (let k = 0; k < n; k++) this.place(k);
  }
}

/**
 * Two 32-bit hash lanes of the key's UTF-16 code units (MurmurHash3-style
 * mixing with different constants per lane, and its finalizer).
 */
export function fingerprint(key: string): [number, number] {
  let a = 0x9747b28c;
  let b = 0x2f1c3a5d;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    let k = Math.imul(c, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    a ^= Math.imul(k, 0x1b873593);
    a = (a << 13) | (a >>> 19);
    a = (Math.imul(a, 5) + 0xe6546b64) | 0;
    let m = Math.imul(c ^ 0x5bd1e995, 0x85ebca6b);
    m = (m << 17) | (m >>> 15);
    b ^= Math.imul(m, 0xc2b2ae35);
    b = (b << 11) | (b >>> 21);
    b = (Math.imul(b, 9) + 0x3c6ef372) | 0;
  }
  return [mix32(a ^ key.length), mix32(b ^ key.length)];
}
