import { redactUrl } from './redact';

describe('redactUrl', () => {
  it('masks the password of user:password@ and keeps the user', () => {
    expect(redactUrl('nats://app:s3cret@127.0.0.1:4222')).toBe('nats://app:***@127.0.0.1:4222');
  });

  it('masks a token given as the user part', () => {
    expect(redactUrl('tls://t0ken@nats.example:4222')).toBe('tls://***@nats.example:4222');
  });

  it('masks every URL of a comma-separated list and inside a sentence', () => {
    const text = 'cannot reach NATS at nats://a:b@h1:4222,nats://c:d@h2:4222: refused';
    expect(redactUrl(text)).toBe('cannot reach NATS at nats://a:***@h1:4222,nats://c:***@h2:4222: refused');
    expect(redactUrl(text)).not.toMatch(/:b@|:d@/);
  });

  it('leaves a URL without credentials unchanged', () => {
    expect(redactUrl('nats://127.0.0.1:4222')).toBe('nats://127.0.0.1:4222');
  });
});
