/**
 * The few numbers the console needs from a service's /metrics: the sum of
 * each counter's samples by one label (`stage`), from the Prometheus text
 * format. Anything it does not understand is skipped, never fatal.
 */

export type CounterSums = Map<string, Map<string, number>>;

const Sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)/;
const Label = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** metric name -> value of `label` -> sum of the samples. Only the names in `wanted`. */
export function sumByLabel(text: string, wanted: readonly string[], label: string): CounterSums {
  const sums: CounterSums = new Map(wanted.map((w) => [w, new Map<string, number>()]));
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = Sample.exec(line);
    if (!m) continue;
    const byLabel = sums.get(m[1]);
    if (!byLabel) continue;
    const value = Number(m[4]);
    if (!Number.isFinite(value)) continue;
    let key = '';
    for (const l of (m[3] ?? '').matchAll(Label)) if (l[1] === label) key = l[2];
    byLabel.set(key, (byLabel.get(key) ?? 0) + value);
  }
  return sums;
}
