import { HttpApp, sendJson } from './http';

describe('HttpApp', () => {
  let app: HttpApp;
  let base: string;
  const reported: { message: string; id: string; what: string }[] = [];

  beforeAll(async () => {
    app = new HttpApp();
    app.onInternalError = (err, id, what) => reported.push({ message: err.message, id, what });
    app.route('GET', '/status', (_req, res) => sendJson(res, 200, { ok: true }), 'open');
    app.route(
      'GET',
      '/boom',
      () => {
        throw new Error('connection string postgres://u:secret@db failed');
      },
      'open',
    );
    base = `http://127.0.0.1:${await app.listen(0, '127.0.0.1')}`;
  });
  afterAll(() => app.close());

  it('answers HEAD like GET, without a body', async () => {
    const res = await fetch(`${base}/status`, { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(await res.text()).toBe('');
  });

  it('answers an unexpected error with a plain 500 and an id, never its text, and reports it with the same id', async () => {
    const res = await fetch(`${base}/boom`);
    const body = (await res.json()) as { error: string; id: string };
    expect(res.status).toBe(500);
    expect(JSON.stringify(body)).not.toMatch(/secret|postgres/);
    expect(body.error).toBe(`internal error (id ${body.id}; the service's log has the details)`);
    expect(reported).toEqual([{ message: 'connection string postgres://u:secret@db failed', id: body.id, what: 'GET /boom' }]);
  });

  it('still answers 405 naming the allowed methods for another method', async () => {
    const res = await fetch(`${base}/status`, { method: 'DELETE' });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('GET');
  });
});
