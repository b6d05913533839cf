import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgv } from './argv';
import { bashCompletion } from './completion';

/** What bash completes for the words typed so far (the last one being completed). */
function complete(script: string, words: string[]): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'mesh-completion-'));
  try {
    const file = join(dir, 'mesh.bash');
    writeFileSync(file, script);
    const array = words.map((w) => `'${w}'`).join(' ');
    const out = execFileSync(
      'bash',
      ['-c', `source ${file}; COMP_WORDS=(mesh ${array}); COMP_CWORD=${words.length}; _mesh; printf '%s\\n' "\${COMPREPLY[@]}"`],
      { encoding: 'utf8' },
    );
    return out.split('\n').filter(Boolean).sort();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('mesh completion bash', () => {
  const script = bashCompletion();

  it('is what `mesh completion bash` prints', () => {
    expect(parseArgv(['completion', 'bash'])).toEqual({ command: 'completion', text: script });
  });

  it('completes commands, the commands of a group, and the options of a command', () => {
    expect(complete(script, ['ro'])).toEqual(['routes']);
    expect(complete(script, ['dlq', ''])).toEqual(['ls', 'redrive', 'rm', 'show']);
    expect(complete(script, ['dlq', 'ls', '--st'])).toEqual(['--stage']);
    expect(complete(script, ['provision', '--tls-'])).toEqual(['--tls-ca', '--tls-cert', '--tls-key']);
  });
});
