/**
 * The shape of an API key: `mesh_<id>_<secret>`, with a 16-hex-digit id
 * (not secret: it names the entry in the key file, so a lookup needs no
 * scan) and 32 random bytes of secret in base64url. Only the SHA-256 of the
 * whole key is stored: keys are high-entropy random secrets, so a fast hash
 * is enough (no password-style stretching), and the comparison runs in
 * constant time.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

const KEY = /^mesh_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;
const HASH = /^sha256:([0-9a-f]{64})$/;

export interface NewKey {
  id: string;
  /** The key to hand to the client: shown once, never stored. */
  secret: string;
  /** What the key file keeps: `sha256:<hex>`. */
  hash: string;
}

export function hashKey(key: string): string {
  return `sha256:${createHash('sha256').update(key, 'utf8').digest('hex')}`;
}

export function generateKey(): NewKey {
  const id = randomBytes(8).toString('hex');
  const secret = `mesh_${id}_${randomBytes(32).toString('base64url')}`;
  return { id, secret, hash: hashKey(secret) };
}

/** The id of a presented key, or undefined when it does not have the shape of a mesh key. */
export function keyIdOf(presented: string): string | undefined {
  return KEY.exec(presented)?.[1];
}

export function isKeyHash(text: string): boolean {
  return HASH.test(text);
}

export function isKeyId(text: string): boolean {
  return /^[0-9a-f]{16}$/.test(text);
}

/** Does `presented` hash to `stored` (`sha256:<hex>`)? Constant time in the key's content. */
export function keyMatches(presented: string, stored: string): boolean {
  const want = HASH.exec(stored);
  const have = HASH.exec(hashKey(presented));
  if (!want || !have) return false;
  return timingSafeEqual(Buffer.from(want[1], 'hex'), Buffer.from(have[1], 'hex'));
}
