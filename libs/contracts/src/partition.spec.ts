import { fnv1a32, partitionKeyOf, partitionOf } from './partition';

describe('fnv1a32', () => {
  it('matches the published FNV-1a 32-bit test vectors', () => {
    expect(fnv1a32('')).toBe(0x811c9dc5);
    expect(fnv1a32('a')).toBe(0xe40c292c);
    expect(fnv1a32('foobar')).toBe(0xbf9cf968);
  });

  it('hashes the UTF-8 bytes, not UTF-16 code units', () => {
    // "é" is two UTF-8 bytes: 0xc3 0xa9.
    let h = 0x811c9dc5;
    for (const b of [0xc3, 0xa9]) h = Math.imul(h ^ b, 0x01000193) >>> 0;
    expect(fnv1a32('é')).toBe(h);
  });

  it('hashes a key that turns non-ASCII midway by all of its UTF-8 bytes', () => {
    // "k-é€" is 6 UTF-8 bytes: 6b 2d c3 a9 e2 82 ac.
    let h = 0x811c9dc5;
    for (const b of [0x6b, 0x2d, 0xc3, 0xa9, 0xe2, 0x82, 0xac]) h = Math.imul(h ^ b, 0x01000193) >>> 0;
    expect(fnv1a32('k-é€')).toBe(h);
  });
});

describe('partitionOf', () => {
  it('is the hash modulo the partition count', () => {
    expect(partitionOf('foobar', 16)).toBe(0xbf9cf968 % 16);
  });
});

describe('partitionKeyOf', () => {
  it('prefers partitionkey, then subject, then source', () => {
    expect(partitionKeyOf({ partitionkey: 'k', subject: 's', source: 'src' })).toBe('k');
    expect(partitionKeyOf({ subject: 's', source: 'src' })).toBe('s');
    expect(partitionKeyOf({ source: 'src' })).toBe('src');
  });
});
