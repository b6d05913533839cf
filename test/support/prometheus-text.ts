/**
 * A small parser of the Prometheus text exposition format (0.0.4), enough to
 * read a scrape by metric name and labels instead of matching whole lines.
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  /** `# TYPE` of each metric family. */
  types: Map<string, string>;
  samples: Sample[];
  /** Samples named `name` whose labels include every label in `labels`. */
  series(name: string, labels?: Record<string, string>): Sample[];
  /** The value of the one sample named `name` with (at least) these labels; throws if there is not exactly one. */
  value(name: string, labels?: Record<string, string>): number;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;

function parseValue(text: string): number {
  if (text === '+Inf') return Number.POSITIVE_INFINITY;
  if (text === '-Inf') return Number.NEGATIVE_INFINITY;
  if (text === 'NaN') return Number.NaN;
  const n = Number(text);
  if (text === '' || Number.isNaN(n)) throw new Error(`not a sample value: ${JSON.stringify(text)}`);
  return n;
}

/** `{a="x",b="y\"z"}` starting at `line[at]`; returns the labels and the index after `}`. */
function parseLabels(line: string, at: number): { labels: Record<string, string>; next: number } {
  const labels: Record<string, string> = {};
  let i = at + 1;
  for (;;) {
    while (line[i] === ' ' || line[i] === ',') i++;
    if (line[i] === '}') return { labels, next: i + 1 };
    const name = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(line.slice(i));
    if (!name) throw new Error(`bad label name at ${i}: ${line}`);
    i += name[0].length;
    if (line[i] !== '=' || line[i + 1] !== '"') throw new Error(`expected =" at ${i}: ${line}`);
    i += 2;
    let value = '';
    for (; i < line.length && line[i] !== '"'; i++) {
      if (line[i] === '\\') {
        const c = line[++i];
        value += c === 'n' ? '\n' : c;
      } else {
        value += line[i];
      }
    }
    if (line[i] !== '"') throw new Error(`unterminated label value: ${line}`);
    labels[name[0]] = value;
    i++;
  }
}

export function parsePrometheusText(text: string): Exposition {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    if (line.startsWith('#')) {
      const m = /^#\s+TYPE\s+(\S+)\s+(\S+)/.exec(line);
      if (m) types.set(m[1], m[2]);
      continue;
    }
    const name = NAME.exec(line);
    if (!name) throw new Error(`not a sample line: ${line}`);
    let i = name[0].length;
    let labels: Record<string, string> = {};
    if (line[i] === '{') ({ labels, next: i } = parseLabels(line, i));
    // The value, then an optional timestamp.
    const [value] = line.slice(i).trim().split(/\s+/);
    samples.push({ name: name[0], labels, value: parseValue(value) });
  }

  const series = (metric: string, want: Record<string, string> = {}) =>
    samples.filter((s) => s.name === metric && Object.entries(want).every(([k, v]) => s.labels[k] === v));
  return {
    types,
    samples,
    series,
    value(metric, want = {}) {
      const found = series(metric, want);
      if (found.length !== 1) {
        throw new Error(`expected one sample ${metric}${JSON.stringify(want)}, found ${found.length}: ${JSON.stringify(found)}`);
      }
      return found[0].value;
    },
  };
}
