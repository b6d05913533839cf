/** An env file: plain `KEY=VALUE` lines, as `docker --env-file`, systemd and `set -a; . file` read them. */
export function renderEnvFile(vars: Readonly<Record<string, string>>): string {
  return Object.entries(vars)
    .map(([k, v]) => {
      // A value is a path we chose; one with a newline or quote could not be read back the same.
      if (/[\n"'\\]/.test(v)) throw new Error(`cannot write ${k}=${JSON.stringify(v)} to an env file: it holds a newline, quote or backslash`);
      return `${k}=${v}\n`;
    })
    .join('');
}

/** Read an env file written by renderEnvFile (blank lines and `#` comments skipped). */
export function parseEnvFile(text: string): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const line of text.split('\n')) {
    if (line.trim() === '' || line.trimStart().startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) throw new Error(`not a KEY=VALUE line: ${JSON.stringify(line)}`);
    vars[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return vars;
}
