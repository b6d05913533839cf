/**
 * Which member owns which partition: rendezvous (highest-random-weight)
 * hashing with exact quotas. Every member computes the same answer from the
 * same member list. Each member gets floor(P/n) or ceil(P/n) partitions (so
 * owned counts differ by at most one), and a partition goes to the
 * highest-scoring member that still has room, so adding the k-th member moves
 * about 1/k of the partitions and removing one moves only its own.
 */
import { createHash } from 'node:crypto';

function score(member: string, partition: number): number {
  // 48 bits of SHA-1: well spread, exact in a double.
  const d = createHash('sha1').update(`${member}\u0000${partition}`).digest();
  return d.readUIntBE(0, 6);
}

export function assignPartitions(members: readonly string[], partitions: number): Map<string, number[]> {
  const unique = [...new Set(members)].sort();
  const result = new Map<string, number[]>(unique.map((m) => [m, []]));
  if (unique.length === 0) return result;

  const base = Math.floor(partitions / unique.length);
  const extra = partitions % unique.length;
  // Which members take the extra partitions is itself decided by a hash, so it does not favour low ids.
  const byLuck = [...unique].sort((a, b) => score(b, -1) - score(a, -1) || a.localeCompare(b));
  const quota = new Map(byLuck.map((m, i) => [m, base + (i < extra ? 1 : 0)]));

  const pairs: { member: string; partition: number; score: number }[] = [];
  for (let p = 0; p < partitions; p++) for (const m of unique) pairs.push({ member: m, partition: p, score: score(m, p) });
  pairs.sort((a, b) => b.score - a.score || a.member.localeCompare(b.member) || a.partition - b.partition);

  const taken = new Set<number>();
  for (const { member, partition } of pairs) {
    if (taken.has(partition)) continue;
    const owned = result.get(member)!;
    if (owned.length >= quota.get(member)!) continue;
    owned.push(partition);
    taken.add(partition);
  }
  for (const owned of result.values()) owned.sort((a, b) => a - b);
  return result;
}
