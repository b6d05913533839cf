/** What a test reads of a process from /proc (Linux). */
import { readFileSync } from 'node:fs';

/** The state letter of a process in /proc (`T`: stopped by a signal, `S`: sleeping, `R`: running). */
export function processState(pid: number): string {
  return readFileSync(`/proc/${pid}/stat`, 'utf8')
    .replace(/^.*\) /s, '')
    .charAt(0);
}
