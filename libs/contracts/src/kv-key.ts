/**
 * Partition keys are arbitrary strings; KV keys allow only `[-/_=.a-zA-Z0-9]`.
 * Each other byte of the UTF-8 key (and `=` itself) is written as `=XX`,
 * so common keys stay readable in the bucket and the mapping is reversible.
 */
const SAFE = /[A-Za-z0-9_-]/;

const ALL_SAFE = /^[A-Za-z0-9_-]+$/;

export function encodeKvToken(key: string): string {
  // Most keys need no escape: no buffer, no loop (this runs for every result written).
  if (ALL_SAFE.test(key)) return key;
  let out = '';
  for (const byte of Buffer.from(key, 'utf8')) {
    const ch = String.fromCharCode(byte);
    out += byte < 0x80 && SAFE.test(ch) ? ch : `=${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  // An empty key still needs a token.
  return out === '' ? '=' : out;
}

export function decodeKvToken(token: string): string {
  if (token === '=') return '';
  const bytes: number[] = [];
  for (let i = 0; i < token.length; i++) {
    if (token[i] === '=') {
      bytes.push(parseInt(token.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(token.charCodeAt(i));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/** Key in `mesh_aggregates` of one aggregation's results for one key. */
export function aggregateKvKey(name: string, key: string): string {
  return `${name}.${encodeKvToken(key)}`;
}
