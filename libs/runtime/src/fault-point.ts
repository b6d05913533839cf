/**
 * Test-only fault points: a test arms one (MESH_TEST_FAULT =
 * `<point>[:<n>][:kill|stop]`) and the process kills itself with SIGKILL,
 * or freezes itself with SIGSTOP, the n-th time it reaches that point, so
 * recovery is tested at an exact place instead of wherever a timer happens to
 * land. A frozen process goes on from the very same place when the test sends
 * SIGCONT: what it does first after a long pause is what the test watches.
 * Off (the default, and in production), `faultPoint()` is one comparison.
 *
 * Just before the signal the process logs one line naming the point and
 * where it was (the partition), so a test can check the fault landed where
 * it meant. A point fires once.
 */
import type { FaultPointNames } from '@mesh/config';
import type { LogFields, Logger } from './logger';

export type FaultPointName = (typeof FaultPointNames)[number];

/** The message of the line logged just before a kill. */
export const FaultPointMessage = 'fault point reached; killing this process';
/** The message of the line logged just before a freeze. */
export const FaultPointStopMessage = 'fault point reached; stopping this process';

let armed: { point: FaultPointName; left: number; stop: boolean; log: Logger } | undefined;

/** Arm the point `spec` names (config has validated it); empty disarms. */
export function armFaultPoint(spec: string, log: Logger): void {
  if (spec === '') {
    armed = undefined;
    return;
  }
  const [point, ...rest] = spec.split(':');
  const n = rest.find((r) => /^\d+$/.test(r));
  armed = { point: point as FaultPointName, left: n === undefined ? 1 : Number(n), stop: rest.includes('stop'), log };
  log.warn('TEST fault point armed: this process will signal itself there', { point, at: armed.left, signal: armed.stop ? 'SIGSTOP' : 'SIGKILL' });
}

/** Kill or freeze this process here if the armed fault is this point and this is its n-th time. */
export function faultPoint(point: FaultPointName, fields?: LogFields): void {
  if (armed === undefined || armed.point !== point || --armed.left > 0) return;
  const { stop, log } = armed;
  armed = undefined;
  // The logger writes synchronously to a pipe or file, so the line is out before the signal.
  log.error(stop ? FaultPointStopMessage : FaultPointMessage, { point, ...fields });
  process.kill(process.pid, stop ? 'SIGSTOP' : 'SIGKILL');
}
