/**
 * Reads `Authorization: Bearer <token>` (RFC 6750) without trusting it: a
 * header too large or not of that shape gets a clear answer, and no message
 * ever repeats the header's content (it may be someone's secret).
 */

/** Longest Authorization header looked at; a mesh key is 66 characters. */
export const MaxAuthorizationBytes = 4096;

export type BearerToken = { kind: 'none' } | { kind: 'token'; token: string } | { kind: 'bad'; status: 400 | 401; error: string; challenge: string };

/** token68 of RFC 7235: the characters a bearer token may have. */
const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*$/;

export function bearerToken(header: string | undefined): BearerToken {
  if (header === undefined) return { kind: 'none' };
  if (Buffer.byteLength(header) > MaxAuthorizationBytes) {
    return {
      kind: 'bad',
      status: 400,
      error: `the Authorization header is larger than ${MaxAuthorizationBytes} bytes; send 'Authorization: Bearer <key>' with a key from 'mesh apikey create'`,
      challenge: 'Bearer error="invalid_request"',
    };
  }
  const match = /^([^\s]+)(?:[ \t]+(.*))?$/.exec(header.trim());
  const scheme = match?.[1] ?? '';
  if (scheme.toLowerCase() !== 'bearer') {
    return {
      kind: 'bad',
      status: 401,
      error: "the Authorization header must use the Bearer scheme: 'Authorization: Bearer <key>'",
      challenge: 'Bearer',
    };
  }
  const token = (match?.[2] ?? '').trim();
  if (!TOKEN68.test(token)) {
    return {
      kind: 'bad',
      status: 400,
      error: "the Authorization header is malformed: expected 'Bearer <key>' with one key of letters, digits and -._~+/",
      challenge: 'Bearer error="invalid_request"',
    };
  }
  return { kind: 'token', token };
}
