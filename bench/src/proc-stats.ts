/**
 * CPU time and peak memory of a process, read from Linux's /proc:
 * utime + stime from /proc/<pid>/stat (clock ticks) and VmHWM (the
 * high-water mark of the resident set) from /proc/<pid>/status.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface CpuTimes {
  userS: number;
  sysS: number;
}

let ticksPerSecond: number | undefined;

function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** CPU seconds the process has used so far; undefined when it is gone. */
export function readCpu(pid: number): CpuTimes | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may hold spaces: count fields after its end.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state); utime is field 14, stime field 15.
  const hz = clockTicks();
  return { userS: Number(fields[11]) / hz, sysS: Number(fields[12]) / hz };
}

/** Peak resident set size in bytes (VmHWM); undefined when the process is gone. */
export function readPeakRss(pid: number): number | undefined {
  try {
    const m = /^VmHWM:\s+(\d+)\s+kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

export function cpuSeconds(t: CpuTimes | undefined): number {
  return t ? t.userS + t.sysS : 0;
}

/** CPU used between two readings. */
export function cpuDelta(before: CpuTimes | undefined, after: CpuTimes | undefined): CpuTimes {
  return { userS: (after?.userS ?? 0) - (before?.userS ?? 0), sysS: (after?.sysS ?? 0) - (before?.sysS ?? 0) };
}
