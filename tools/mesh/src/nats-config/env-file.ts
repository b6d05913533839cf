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
