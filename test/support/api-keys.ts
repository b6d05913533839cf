/** The `mesh apikey` CLI as an operator runs it (the built binary), for tests that need keys. */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { RepoRoot } from '@mesh/testing';

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function meshCli(args: string[]): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(RepoRoot, 'tools', 'mesh', 'dist', 'main.js'), ...args], {
      env: { PATH: process.env.PATH ?? '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** `mesh apikey create`; resolves to the key (the last line of its output). */
export async function createKey(file: string, name: string, scopes: string, extra: string[] = []): Promise<string> {
  const run = await meshCli(['apikey', 'create', '--name', name, '--scopes', scopes, '--file', file, ...extra]);
  if (run.code !== 0) throw new Error(`mesh apikey create ${name} exited ${run.code}: ${run.stderr}`);
  return run.stdout.trimEnd().split('\n').pop()!;
}

export const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
