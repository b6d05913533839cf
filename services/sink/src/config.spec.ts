import { ConfigError } from '@mesh/config';
import { loadSinkConfig } from './config';

describe('sink config', () => {
  it('needs MESH_SINK_POSTGRES_URL and names it when missing', () => {
    expect(() => loadSinkConfig({ env: {} })).toThrow(ConfigError);
    expect(() => loadSinkConfig({ env: {} })).toThrow(/MESH_SINK_POSTGRES_URL \(sink\.postgresUrl\) = \[redacted\] is invalid: must be a PostgreSQL URL/);
  });

  it('never shows the password of a URL it refuses', () => {
    let message = '';
    try {
      // No host: refused. The password is in the query, where no URL masking looks.
      loadSinkConfig({ env: { MESH_SINK_POSTGRES_URL: 'postgres:///mesh?user=app&password=s3cret' } });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/MESH_SINK_POSTGRES_URL/);
    expect(message).not.toContain('s3cret');
  });

  it('reads the URL, batch, flush and backoff settings with their defaults', () => {
    const c = loadSinkConfig({ env: { MESH_SINK_POSTGRES_URL: 'postgres://postgres@127.0.0.1:5432/mesh', MESH_SINK_RETRY_MAX: '2s' } });
    expect(c.sink).toEqual({
      postgresUrl: 'postgres://postgres@127.0.0.1:5432/mesh',
      batchSize: 500,
      flushInterval: 200,
      retryMin: 250,
      retryMax: 2000,
      poolSize: 4,
    });
    expect(c.http.port).toBe(8085);
    expect(c.nats.inboxPrefix).toBe('_INBOX_sink');
  });
});
