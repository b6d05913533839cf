/**
 * Run a service's built `dist/main.js` as an operator would, to its exit:
 * for tests of start-ups that must refuse (exit code, stderr, how long it
 * took). A process still running after `killAfterMs` is killed and reported
 * with code null: it did not stop by itself.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { RepoRoot } from '@mesh/testing';

export interface Exit {
  /** null when the process had to be killed. */
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** `children` holds the process while it runs, so a test's afterEach can kill what is left. */
export function runServiceToExit(name: string, env: Record<string, string>, killAfterMs: number, children: Set<ChildProcess>): Promise<Exit> {
  const started = Date.now();
  const child = spawn(process.execPath, [join(RepoRoot, 'services', name, 'dist', 'main.js')], {
    env: { PATH: process.env.PATH ?? '', HTTP_PORT: '0', HTTP_HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
  return new Promise((resolve) => {
    child.once('close', (code) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
  });
}
