import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { authOptions, credentialsFromEnv, describeCredentials, urlCredentials } from './nats-credentials';
import { NatsCredentialsError } from './errors';

describe('NATS credentials', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'mesh-creds-unit-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const refusal = (c: Parameters<typeof authOptions>[0]) => {
    try {
      authOptions(c);
    } catch (err) {
      expect(err).toBeInstanceOf(NatsCredentialsError);
      return (err as Error).message;
    }
    throw new Error('authOptions accepted it');
  };

  it('reads every setting from its NATS_* variable', () => {
    expect(credentialsFromEnv({ NATS_USER: 'u', NATS_PASSWORD_FILE: '/p', NATS_TLS_CA: ' /ca ' })).toMatchObject({
      user: 'u',
      passwordFile: '/p',
      tlsCa: '/ca',
      token: '',
    });
  });

  it('refuses settings that cannot work, naming them', () => {
    expect(refusal({ password: 'x' })).toBe('NATS_PASSWORD is set without NATS_USER; give the user name too');
    expect(refusal({ user: 'u' })).toBe('NATS_USER is set without a password; set NATS_PASSWORD or NATS_PASSWORD_FILE');
    expect(refusal({ token: 'a', tokenFile: '/t' })).toBe('NATS_TOKEN and NATS_TOKEN_FILE are both set; give one of them');
    expect(refusal({ tlsCert: '/c.pem' })).toMatch(/^NATS_TLS_CERT and NATS_TLS_KEY go together/);
    expect(refusal({ creds: join(dir, 'none.creds') })).toMatch(/^NATS_CREDS: cannot read the creds file .*none\.creds \(ENOENT\)$/);
    const notSeed = join(dir, 'bad.nk');
    writeFileSync(notSeed, 'hello\n');
    expect(refusal({ nkeySeedFile: notSeed })).toMatch(/does not hold an nkey user seed/);
    const empty = join(dir, 'empty');
    writeFileSync(empty, '\n');
    expect(refusal({ user: 'u', passwordFile: empty })).toMatch(/the password file .*empty is empty/);
  });

  it('refuses two ways of authenticating at once', () => {
    expect(refusal({ user: 'u', password: 'p', token: 't' })).toMatch(/more than one way to authenticate is set \(user 'u' and a token\)/);
  });

  it('turns TLS on with a CA and describes credentials without their secrets', () => {
    const ca = join(dir, 'ca.pem');
    writeFileSync(ca, 'x');
    expect(authOptions({ tlsCa: ca }).tls).toEqual({ caFile: ca });
    expect(describeCredentials({ user: 'u', password: 'secret' })).toBe("user 'u'");
    expect(describeCredentials({ token: 'secret' })).toBe('a token');
  });

  it('takes credentials out of the URL and leaves the servers without them', () => {
    const { servers, authenticator } = urlCredentials('nats://app:pw@h1:4222, nats://h2:4222');
    expect(servers).toEqual(['nats://h1:4222', 'nats://h2:4222']);
    expect(authenticator?.('')).toMatchObject({ user: 'app', pass: 'pw' });
    expect(urlCredentials('nats://h:1').authenticator).toBeUndefined();
  });
});
