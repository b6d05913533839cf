import { aggregateKvKey, decodeKvToken, encodeKvToken } from './kv-key';

const KV_KEY = /^[-/_=.a-zA-Z0-9]+$/;

const keys = ['', 'customer-42', 'a.b.c', '=', '=3D', '==', 'a/b', 'with space', 'tab\tand\nnewline', '*>', 'Ünïcødé', '東京', 'emoji 🚀 and 👩‍👩‍👧', '%2E'];

describe('encodeKvToken and decodeKvToken', () => {
  it.each(keys)('round-trip the key %j', (key) => {
    expect(decodeKvToken(encodeKvToken(key))).toBe(key);
  });

  it.each(keys)('encode %j using only characters a KV key allows', (key) => {
    expect(encodeKvToken(key)).toMatch(KV_KEY);
  });

  it('give different keys different tokens', () => {
    const tokens = keys.map(encodeKvToken);
    expect(new Set(tokens).size).toBe(keys.length);
  });

  it('leave letters, digits, "-" and "_" readable', () => {
    expect(encodeKvToken('Order_42-x')).toBe('Order_42-x');
  });

  it('escape ".", "=" and other bytes as =XX of their UTF-8 bytes', () => {
    expect(encodeKvToken('a.b')).toBe('a=2Eb');
    expect(encodeKvToken('=')).toBe('=3D');
    expect(encodeKvToken('é')).toBe('=C3=A9');
  });

  it('encode the empty key as a token of its own', () => {
    expect(encodeKvToken('')).toBe('=');
    expect(decodeKvToken('=')).toBe('');
  });
});

describe('aggregateKvKey', () => {
  it('puts the key in one token after the aggregation name, whatever dots it holds', () => {
    const kvKey = aggregateKvKey('orders-per-minute', 'eu.customer.7');
    expect(kvKey).toBe('orders-per-minute.eu=2Ecustomer=2E7');
    expect(kvKey.split('.')).toHaveLength(2);
    expect(decodeKvToken(kvKey.split('.')[1])).toBe('eu.customer.7');
  });
});
