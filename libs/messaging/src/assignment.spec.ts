import { assignPartitions } from './assignment';

const ids = (n: number) => Array.from({ length: n }, (_, i) => `processor-host-${1000 + i}-${(i * 7919).toString(16)}`);

function owners(assignment: Map<string, number[]>): Map<number, string> {
  const byPartition = new Map<number, string>();
  for (const [m, ps] of assignment) for (const p of ps) byPartition.set(p, m);
  return byPartition;
}

describe('assignPartitions', () => {
  it('gives every partition exactly one owner', () => {
    for (const n of [1, 2, 3, 5, 16, 20]) {
      const a = assignPartitions(ids(n), 16);
      const all = [...a.values()].flat().sort((x, y) => x - y);
      expect(all).toEqual(Array.from({ length: 16 }, (_, p) => p));
    }
  });

  it('spreads partitions so owned counts differ by at most one', () => {
    for (const n of [2, 3, 5, 7, 16]) {
      const counts = [...assignPartitions(ids(n), 16).values()].map((ps) => ps.length);
      expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
    }
  });

  it('is the same whatever the order the members are listed in', () => {
    const members = ids(4);
    expect(assignPartitions([...members].reverse(), 16)).toEqual(assignPartitions(members, 16));
  });

  it('moves about 1/k of the partitions when the k-th member joins', () => {
    const all = ids(8);
    for (let k = 2; k <= 8; k++) {
      const before = owners(assignPartitions(all.slice(0, k - 1), 64));
      const after = owners(assignPartitions(all.slice(0, k), 64));
      const moved = [...after].filter(([p, m]) => before.get(p) !== m).length;
      // Ideal is 64/k; keeping counts within one of each other costs some
      // extra moves (measured: 1.15x the ideal on average, 1.6x at worst).
      expect(moved).toBeGreaterThanOrEqual(Math.floor(64 / k));
      expect(moved).toBeLessThanOrEqual(Math.ceil((1.6 * 64) / k));
    }
  });

  it('moves on average close to the ideal 1/k over many member sets', () => {
    for (const partitions of [16, 64]) {
      let moved = 0;
      let ideal = 0;
      for (let trial = 0; trial < 100; trial++) {
        const members = Array.from({ length: 6 }, (_, i) => `m-${trial}-${i}`);
        for (let k = 2; k <= 6; k++) {
          const before = owners(assignPartitions(members.slice(0, k - 1), partitions));
          const after = owners(assignPartitions(members.slice(0, k), partitions));
          moved += [...after].filter(([p, m]) => before.get(p) !== m).length;
          ideal += partitions / k;
        }
      }
      // Measured 1.15x (P=64) to 1.3x (P=16): exact balance costs some moves between old members.
      expect(moved / ideal).toBeLessThan(1.35);
    }
  });

  it('moves only the partitions of a member that leaves (plus quota rounding)', () => {
    const members = ids(4);
    const before = assignPartitions(members, 16);
    const after = owners(assignPartitions(members.slice(1), 16));
    const beforeOwners = owners(before);
    const moved = [...after].filter(([p, m]) => beforeOwners.get(p) !== m).map(([p]) => p);
    const leaverHad = before.get(members[0])!;
    for (const p of leaverHad) expect(moved).toContain(p);
    expect(moved.length).toBeLessThanOrEqual(leaverHad.length + 1);
  });

  it('gives a member beyond the partition count nothing', () => {
    const a = assignPartitions(ids(20), 16);
    expect([...a.values()].filter((ps) => ps.length === 0)).toHaveLength(4);
  });
});
