import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { HttpApp, readBody, sendError, sendJson } from './http';

describe('HttpApp', () => {
  let app: HttpApp;
  let base: string;
  const reported: { message: string; id: string; what: string }[] = [];

  beforeAll(async () => {
    app = new HttpApp();
    app.onInternalError = (err, id, what) => reported.push({ message: err.message, id, what });
    app.describe({ title: 'test service', version: '1.2.3' });
    app.route('GET', '/status', (_req, res) => sendJson(res, 200, { ok: true }), 'open', { summary: 'status', responses: { 200: { description: 'fine' } } });
    app.route(
      'POST',
      '/echo/:name',
      async (req, res, params) => {
        const body = await readBody(req, 16);
        if (body.length === 0) return sendError(res, 400, 'empty body; send 1 to 16 bytes', { field: 'body' });
        sendJson(res, 200, { name: params.name, bytes: body.length, type: req.headers['content-type'] ?? null });
      },
      'ingest',
      {
        summary: 'echo',
        params: { name: 'who to greet' },
        query: { loud: { description: 'shout', schema: { type: 'boolean' } } },
        body: { content: { 'text/plain': { type: 'string' } } },
        responses: { 200: { description: 'the size of the body', content: { 'application/json': { type: 'object' } } } },
      },
    );
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

  const post = (path: string, headers: Record<string, string | number>, body: string) =>
    new Promise<{ status: number; type?: string; body: string }>((resolve, reject) => {
      const req = request(`${base}${path}`, { method: 'POST', headers }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode!, type: res.headers['content-type'], body: text }));
      });
      req.on('error', reject);
      req.end(body);
    });

  it('hands the body to the handler unread, whatever its content type, or none', async () => {
    for (const type of [undefined, '', 'application/json', 'text/weird; x=1', 'application/cloudevents-batch+json']) {
      const headers: Record<string, string | number> = { 'content-length': 5, ...(type === undefined ? {} : { 'content-type': type }) };
      const res = await post('/echo/ann', headers, type === 'application/json' ? '{oops' : 'hello');
      expect({ type, status: res.status, body: JSON.parse(res.body) }).toEqual({ type, status: 200, body: { name: 'ann', bytes: 5, type: type ?? null } });
    }
  });

  it('answers errors as RFC 9457 problem details, keeping the error field', async () => {
    const res = await post('/echo/ann', { 'content-length': 0 }, '');
    expect(res.status).toBe(400);
    expect(res.type).toBe('application/problem+json');
    expect(JSON.parse(res.body)).toEqual({
      type: 'about:blank',
      title: 'Bad Request',
      status: 400,
      detail: 'empty body; send 1 to 16 bytes',
      error: 'empty body; send 1 to 16 bytes',
      field: 'body',
    });
    const missing = await fetch(`${base}/nowhere`);
    expect(missing.status).toBe(404);
    expect(missing.headers.get('content-type')).toBe('application/problem+json');
    expect(await missing.json()).toMatchObject({ status: 404, title: 'Not Found', detail: 'no route for GET /nowhere', instance: '/nowhere' });
  });

  it('decodes path parameters up to a long partition key, and refuses bad percent-encoding with 400', async () => {
    const long = 'k'.repeat(1024);
    const ok = await post(`/echo/${encodeURIComponent('a/b ' + long)}`, { 'content-length': 1 }, 'x');
    expect(JSON.parse(ok.body).name).toBe('a/b ' + long);
    const bad = await post('/echo/%E0%A4%A', { 'content-length': 1 }, 'x');
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body)).toMatchObject({ status: 400, detail: 'the path /echo/%E0%A4%A is not valid percent-encoding' });
  });

  it('serves an OpenAPI 3.1 document of its routes at /openapi.json', async () => {
    const res = await fetch(`${base}/openapi.json`);
    expect(res.status).toBe(200);
    const doc = (await res.json()) as {
      openapi: string;
      info: { title: string; version: string };
      paths: Record<string, Record<string, { summary: string; parameters?: { name: string; in: string; description?: string }[]; security?: unknown[] }>>;
      components: { securitySchemes: Record<string, unknown> };
    };
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.info).toMatchObject({ title: 'test service', version: '1.2.3' });
    expect(Object.keys(doc.paths).sort()).toEqual(['/boom', '/echo/{name}', '/status']);
    expect(doc.paths['/status'].get.summary).toBe('status');
    expect(doc.paths['/status'].get.security).toEqual([]);
    const echo = doc.paths['/echo/{name}'].post;
    expect(echo.security).toEqual([{ apiKey: [] }]);
    expect(echo.parameters).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ name: 'name', in: 'path', description: 'who to greet' }),
        expect.objectContaining({ name: 'loud', in: 'query' }),
      ]),
    );
    expect(doc.components.securitySchemes.apiKey).toMatchObject({ type: 'http', scheme: 'bearer' });
  });

  it('serves a route added after it started listening (a service adds its API once started), and documents it', async () => {
    expect((await fetch(`${base}/late`)).status).toBe(404);
    app.route('GET', '/late', (_req, res) => sendJson(res, 200, { late: true }), 'query', {
      summary: 'added late',
      responses: { 200: { description: 'late' } },
    });
    const res = await fetch(`${base}/late`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ late: true });
    const doc = (await (await fetch(`${base}/openapi.json`)).json()) as { paths: Record<string, { get?: { summary: string } }> };
    expect(doc.paths['/late'].get?.summary).toBe('added late');
  });
});

describe('HttpApp.close', () => {
  /** Reads from a raw socket until `count` complete answers (head + JSON body) have arrived or it closes. */
  function answers(socket: Socket): { text: () => string; ended: Promise<void> } {
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
    const ended = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    return { text: () => text, ended };
  }

  /** An app with one route, and a raw client connection to it. */
  async function statusAppWithClient() {
    const app = new HttpApp();
    app.route('GET', '/status', (_req, res) => sendJson(res, 200, { ok: true }), 'open');
    const socket = connect(await app.listen(0, '127.0.0.1'), '127.0.0.1');
    return { app, socket, got: answers(socket) };
  }

  it('answers a request that arrives on an idle keep-alive connection just after the stop began, then closes that connection', async () => {
    const { app, socket, got } = await statusAppWithClient();
    const ask = 'GET /status HTTP/1.1\r\nhost: x\r\n\r\n';
    socket.write(ask);
    await new Promise((r) => setTimeout(r, 100));
    expect(got.text()).toMatch(/^HTTP\/1\.1 200/);
    expect(got.text()).toMatch(/connection: keep-alive/i);

    // The connection is idle when the stop begins; the client's next request is already on its way.
    const closed = app.close();
    socket.write(ask);
    await closed;
    await got.ended;

    const heads = got.text().match(/HTTP\/1\.1 \d+/g);
    expect(heads).toEqual(['HTTP/1.1 200', 'HTTP/1.1 200']);
    expect(got.text().split('HTTP/1.1')[2]).toMatch(/connection: close/i);
  });

  it('does not wait for a connection that stays idle beyond the grace', async () => {
    const { app, socket, got } = await statusAppWithClient();
    await new Promise((r) => socket.once('connect', r));
    const t0 = Date.now();
    await app.close(200);
    await got.ended;
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(190);
    expect(took).toBeLessThan(1_000);
  });
});
