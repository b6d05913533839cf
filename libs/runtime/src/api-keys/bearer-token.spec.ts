import { bearerToken } from './bearer-token';

describe('bearerToken', () => {
  it('reads a bearer token, whatever the case of the scheme', () => {
    expect(bearerToken('Bearer mesh_0123456789abcdef_abc')).toEqual({ kind: 'token', token: 'mesh_0123456789abcdef_abc' });
    expect(bearerToken('bearer abc==')).toEqual({ kind: 'token', token: 'abc==' });
  });

  it('tells a missing header from a bad one', () => {
    expect(bearerToken(undefined)).toEqual({ kind: 'none' });
  });

  it('refuses another scheme with 401 and a Bearer challenge', () => {
    expect(bearerToken('Basic dXNlcjpwYXNz')).toMatchObject({ kind: 'bad', status: 401, challenge: 'Bearer' });
  });

  it.each(['Bearer', 'Bearer ', 'Bearer a b', 'Bearer ä', 'Bearer \u0000x'])('refuses the malformed %j with 400 and does not repeat it', (header) => {
    const parsed = bearerToken(header);
    expect(parsed).toMatchObject({ kind: 'bad', status: 400, challenge: 'Bearer error="invalid_request"' });
    expect((parsed as { error: string }).error).not.toContain(header.slice(7) || '\u0001');
  });

  it('refuses a header over 4 KB with 400 without looking into it', () => {
    const parsed = bearerToken(`Bearer ${'a'.repeat(5000)}`);
    expect(parsed).toMatchObject({ kind: 'bad', status: 400 });
    expect((parsed as { error: string }).error).toMatch(/larger than 4096 bytes/);
  });
});
