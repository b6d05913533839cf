/**
 * Event type patterns, with NATS subject wildcards over the dotted tokens of
 * a type: `*` matches one token, `>` (last) matches one or more.
 * `order.*` matches `order.created`; `order.>` matches `order.line.added`.
 */
export function typeMatches(pattern: string, type: string): boolean {
  if (pattern === type) return true;
  const want = pattern.split('.');
  const have = type.split('.');
  for (let i = 0; i < want.length; i++) {
    if (want[i] === '>') return i === want.length - 1 && have.length > i;
    if (i >= have.length) return false;
    if (want[i] !== '*' && want[i] !== have[i]) return false;
  }
  return want.length === have.length;
}

const TOKEN = /^[A-Za-z0-9_-]+$/;

/** Why a type pattern is malformed, or undefined when it is well formed. */
export function typePatternProblem(pattern: string): string | undefined {
  if (typeof pattern !== 'string' || pattern.length === 0) return 'must be a non-empty string';
  const tokens = pattern.split('.');
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (t === '*') continue;
    if (t === '>') {
      if (i !== tokens.length - 1) return "'>' may only be the last token";
      continue;
    }
    if (!TOKEN.test(t)) return `token '${t}' must be letters, digits, '_' or '-', or a wildcard '*' or '>'`;
  }
  return undefined;
}
