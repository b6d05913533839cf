import type { ChildProcess } from 'node:child_process';

/** Whether a child process has exited (or was never started). */
export function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null || child.pid === undefined;
}

/**
 * SIGTERM a child by its pid and wait for it to exit; SIGKILL it if it is
 * still there after `graceMs` (then `onKill` says so). Resolves at once when
 * it has already exited.
 */
export async function stopChild(child: ChildProcess, graceMs: number, onKill?: () => void): Promise<void> {
  if (hasExited(child)) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => {
    if (hasExited(child)) return;
    onKill?.();
    child.kill('SIGKILL');
  }, graceMs);
  await exited;
  clearTimeout(timer);
}
