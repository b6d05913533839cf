/**
 * Where a command writes. Commands never touch process.stdout: they get an
 * Output, so tests read what an operator would see.
 */

export { oneOf, printable } from '@mesh/operations';

export interface Output {
  /** The command's result (stdout): table rows, the JSON document. */
  out(text: string): void;
  /** Notes and diagnostics for the operator (stderr). */
  err(text: string): void;
}

export function stdioOutput(): Output {
  return {
    out: (text) => process.stdout.write(`${text}\n`),
    err: (text) => process.stderr.write(`${text}\n`),
  };
}

/** An Output that keeps every line, for tests and for embedding the CLI. */
export class MemoryOutput implements Output {
  readonly stdout: string[] = [];
  readonly stderr: string[] = [];
  out(text: string): void {
    this.stdout.push(...text.split('\n'));
  }
  err(text: string): void {
    this.stderr.push(...text.split('\n'));
  }
  get text(): string {
    return this.stdout.join('\n');
  }
  /** The stdout as one JSON document (what `--json` writes). */
  json<T = unknown>(): T {
    return JSON.parse(this.text) as T;
  }
}

/** Columns padded to their widest cell; the last column is not padded. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)];
}

/** Cut a one-line value to `max` characters for a table cell. */
export function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}
