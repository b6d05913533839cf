/**
 * Test-only fault points: a test arms one (MESH_TEST_FAULT = `<point>` or
 * `<point>:<n>`) and the process kills itself with SIGKILL the n-th time it
 * reaches that point, so recovery is tested at an exact place instead of
 * wherever a timer happens to land. Off (the default, and in production),
 * `faultPoint()` is one comparison.
 *
 * Just before dying the process logs one line naming the point and where it
 * was (the partition), so a test can check that the kill landed where it meant.
 */
import type { FaultPointNames } from '@mesh/config';
import type { LogFields, Logger } from './logger';

export type FaultPointName = (typeof FaultPointNames)[number];

/** The message of the line logged just before the kill. */
export const FaultPointMessage = 'fault point reached; killing this process';

let armed: { point: FaultPointName; left: number; log: Logger } | undefined;

/** Arm the point `spec` names (config has validated it); empty disarms. */
export function armFaultPoint(spec: string, log: Logger): void {
  if (spec === '') {
    armed = undefined;
    return;
  }
  const [point, n] = spec.split(':');
  armed = { point: point as FaultPointName, left: n === undefined ? 1 : Number(n), log };
  log.warn('TEST fault point armed: this process will kill itself there', { point, at: armed.left });
}

/** Kill this process here if the armed fault is this point and this is its n-th time. */
export function faultPoint(point: FaultPointName, fields?: LogFields): void {
  if (armed === undefined || armed.point !== point || --armed.left > 0) return;
  // The logger writes synchronously to a pipe or file, so the line is out before the kill.
  armed.log.error(FaultPointMessage, { point, ...fields });
  process.kill(process.pid, 'SIGKILL');
}
