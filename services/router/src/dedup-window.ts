/**
 * Remembers the `source` + `id` of the events one partition has seen within
 * the duplicate window, by stream time, so an event sent twice (in another
 * request, another format, through another ingest) is routed once.
 *
 * Decisions depend only on the stream (its order and its timestamps), so the
 * window rebuilt from the stream after a restart decides as the lost one did.
 */
export class DedupWindow {
  // Insertion order is stream order, so the oldest entries are first.
  private readonly seenAt = new Map<string, number>();

  constructor(private readonly windowMs: number) {}

  get size(): number {
    return this.seenAt.size;
  }

  static keyOf(source: string, id: string): string {
    return `${source.length}:${source}${id}`;
  }

  /** True when the key was seen within the window before `atMs`; records it otherwise. */
  seen(key: string, atMs: number): boolean {
    this.expire(atMs);
    if (this.seenAt.has(key)) return true;
    this.seenAt.set(key, atMs);
    return false;
  }

  private expire(nowMs: number): void {
    const oldest = nowMs - this.windowMs;
    for (const [key, at] of this.seenAt) {
      if (at >= oldest) break;
      this.seenAt.delete(key);
    }
  }
}
