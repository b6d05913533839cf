/**
 * The HTTP layer of every service, on fastify: routes with `:params`, JSON
 * answers, errors as RFC 9457 problem details, bounded bodies, and an
 * OpenAPI 3.1 document of the service's API at /openapi.json built from
 * what each route declares. Every service serves its API, /healthz, /readyz
 * and /metrics through it. Each route declares the access it needs (`open`
 * or an API key scope); a guard, when one is set, decides before the
 * handler runs.
 *
 * Handlers work on node's request and response (a route's answer may be a
 * stream, as Server-Sent Events are) and read their own bodies with
 * readBody, so ingest can count bytes in flight and refuse a body as it
 * arrives: fastify routes the request and hands it over before it parses
 * anything.
 */
import { randomUUID } from 'node:crypto';
import { createServer, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import swagger from '@fastify/swagger';
import Fastify, { type FastifyError, type FastifyInstance, type FastifySchema } from 'fastify';
import type { ApiKeyEntry } from './api-keys/key-file';
import type { RouteAccess } from './api-keys/scopes';

export interface Caller {
  address: string;
  key?: ApiKeyEntry;
}

export type RouteHandler = (req: IncomingMessage, res: ServerResponse, params: Record<string, string>, caller: Caller) => void | Promise<void>;

export type GuardVerdict = { ok: true; caller: Caller } | { ok: false; status: number; error: string; headers?: Record<string, string> };

/** Decides whether a request may reach a route needing `access`; `what` names the route for messages. */
export type Guard = (req: IncomingMessage, access: RouteAccess, what: string) => GuardVerdict;

/** PEM certificate and key: the listener speaks HTTPS. */
export interface TlsFiles {
  cert: Buffer;
  key: Buffer;
}

/** A JSON Schema (2020-12, as OpenAPI 3.1 uses) describing a body, a parameter or an answer. */
export type JsonSchema = Record<string, unknown>;

/** What /openapi.json says of a route. */
export interface RouteDoc {
  summary: string;
  description?: string;
  /** Path parameters: name to description. */
  params?: Record<string, string>;
  /** Query parameters. */
  query?: Record<string, { description: string; schema?: JsonSchema; required?: boolean }>;
  /** Request body, by content type. */
  body?: { description?: string; required?: boolean; content: Record<string, JsonSchema> };
  /** Answers by status; `content` by content type (JSON when not said). Error answers are problem details. */
  responses: Record<number, { description: string; content?: Record<string, JsonSchema> }>;
}

interface Route {
  method: string;
  path: string;
  parts: string[];
  handler: RouteHandler;
  access: RouteAccess;
  doc?: RouteDoc;
}

/** Content type of every error answer (RFC 9457). */
export const ProblemContentType = 'application/problem+json';

/** The body of an error answer: RFC 9457 problem details, with `error` (= `detail`) kept for older clients. */
export const ProblemSchema: JsonSchema = {
  type: 'object',
  required: ['type', 'title', 'status', 'detail', 'error'],
  properties: {
    type: { type: 'string', description: 'about:blank: the status says what kind of problem it is' },
    title: { type: 'string', description: "the status's reason phrase" },
    status: { type: 'integer' },
    detail: { type: 'string', description: 'what was wrong, which value, and what would be accepted' },
    error: { type: 'string', description: 'the same as detail' },
    instance: { type: 'string', description: 'the request path' },
  },
  additionalProperties: true,
};

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/**
 * An error answer as RFC 9457 problem details: `detail` says what was wrong
 * (also as `error`, the field clients of earlier versions read); `details`
 * adds members (ingest's `problems`, say).
 */
export function sendError(
  res: ServerResponse,
  status: number,
  error: string,
  details: Record<string, unknown> = {},
  headers: Record<string, string> = {},
): void {
  const problem = { type: 'about:blank', title: STATUS_CODES[status] ?? 'Error', status, detail: error, error, ...details };
  sendJson(res, status, problem, { 'content-type': ProblemContentType, ...headers });
}

/** Thrown by readBody when the body is larger than allowed. */
export class BodyTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`request body is larger than the limit of ${limit} bytes`);
    this.name = 'BodyTooLargeError';
  }
}

/**
 * Read the whole body, refusing it as soon as it passes `limit` bytes.
 * `onData` sees each chunk's size as it arrives and may refuse the body by
 * returning an error (ingest counts bytes in flight that way).
 */
export function readBody(req: IncomingMessage, limit: number, onData?: (bytes: number) => Error | undefined): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      reject(new BodyTooLargeError(limit));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on('data', (chunk: Buffer) => {
      if (failed) return;
      size += chunk.length;
      if (size > limit) {
        failed = true;
        reject(new BodyTooLargeError(limit));
        return;
      }
      const refused = onData?.(chunk.length);
      if (refused) {
        failed = true;
        reject(refused);
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => !failed && resolve(Buffer.concat(chunks, size)));
    req.on('error', (err) => !failed && reject(err));
    req.on('aborted', () => !failed && reject(new Error('request aborted')));
  });
}

/** Identity of the document /openapi.json serves. */
export interface ApiInfo {
  title: string;
  version: string;
  description?: string;
}

export class HttpApp {
  private readonly routes: Route[] = [];
  private server?: Server | TlsServer;
  /** The fastify instance for the routes there were when it was built. */
  private compiled?: { routes: number; app: Promise<FastifyInstance> };
  /** Open connections, and when the last request on each ended (0 while one is in progress). */
  private readonly sockets = new Map<Socket, { active: number }>();
  private closing = false;
  private guard?: Guard;
  private info: ApiInfo = { title: 'mesh service', version: '0.0.0' };
  /**
   * Told of a handler's unexpected error. The client gets a plain 500 with
   * an id to quote, never the error's text (it may name internals).
   */
  onInternalError: (err: Error, id: string, what: string) => void = () => undefined;

  /**
   * Serve `method path` with `handler`. `access` is what a caller needs
   * while API keys are on: `open` for anyone, else a key with that scope
   * (or admin). A route that says nothing needs admin: forgetting to
   * declare access never opens a route. `doc` describes it in /openapi.json.
   */
  route(method: string, path: string, handler: RouteHandler, access: RouteAccess = 'admin', doc?: RouteDoc): this {
    this.routes.push({ method, path, parts: path.split('/'), handler, access, doc });
    return this;
  }

  /** Check every request against its route's access before the handler runs (API keys). */
  useGuard(guard: Guard): this {
    this.guard = guard;
    return this;
  }

  /** Title and version of the OpenAPI document. */
  describe(info: ApiInfo): this {
    this.info = info;
    return this;
  }

  /** The methods of routes whose path matches (for 405 and its Allow header). */
  private allowedOn(path: string): string[] {
    const parts = path.split('/');
    const allowed: string[] = [];
    for (const route of this.routes) {
      if (route.parts.length !== parts.length) continue;
      if (route.parts.every((want, i) => want.startsWith(':') || want === parts[i])) allowed.push(route.method);
    }
    return allowed;
  }

  /** One route as fastify takes it: only a description (nothing is validated by it; handlers check their own input). */
  private schemaOf(route: Route): FastifySchema {
    const doc = route.doc;
    const errors: Record<string, unknown> = {
      '4XX': { description: 'the request was refused; detail says why', content: { [ProblemContentType]: { schema: ProblemSchema } } },
      '5XX': { description: 'the service could not answer; detail carries an id to quote', content: { [ProblemContentType]: { schema: ProblemSchema } } },
    };
    const responses: Record<string, unknown> = {};
    for (const [status, r] of Object.entries(doc?.responses ?? { 200: { description: 'OK' } })) {
      const content = r.content ?? (Number(status) === 204 ? undefined : { 'application/json': {} });
      responses[status] = { description: r.description, ...(content ? { content: mapValues(content, (schema) => ({ schema })) } : {}) };
    }
    const params = route.parts.filter((p) => p.startsWith(':')).map((p) => p.slice(1));
    return {
      summary: doc?.summary ?? `${route.method} ${route.path}`,
      ...(doc?.description ? { description: doc.description } : {}),
      ...(params.length > 0
        ? {
            params: {
              type: 'object',
              required: params,
              properties: Object.fromEntries(params.map((p) => [p, { type: 'string', description: doc?.params?.[p] ?? p }])),
            },
          }
        : {}),
      ...(doc?.query
        ? {
            querystring: {
              type: 'object',
              required: Object.entries(doc.query)
                .filter(([, q]) => q.required)
                .map(([name]) => name),
              properties: mapValues(doc.query, (q) => ({ ...(q.schema ?? { type: 'string' }), description: q.description })),
            },
          }
        : {}),
      ...(doc?.body
        ? { body: { content: mapValues(doc.body.content, (schema) => ({ schema })), ...(doc.body.required === false ? {} : { required: true }) } }
        : {}),
      response: { ...responses, ...errors },
      ...(route.access === 'open' ? { security: [] } : { security: [{ apiKey: [] }], 'x-mesh-scope': route.access }),
    } as FastifySchema;
  }

  /**
   * Listen on `host:port`, with HTTPS when `tls` is given; resolves to the
   * port. A service listens before it has connected to NATS (so /healthz and
   * /readyz answer while it waits) and adds its API's routes once started;
   * fastify takes no route once ready, so the routes are compiled into a
   * fresh fastify instance when the first request after a change comes.
   */
  async listen(port: number, host: string, tls?: TlsFiles): Promise<number> {
    const dispatch = (req: IncomingMessage, res: ServerResponse) => {
      const socket = this.sockets.get(req.socket);
      if (socket) {
        socket.active++;
        res.once('close', () => socket.active--);
      }
      // While closing, each connection ends after its answer, so keep-alives drain by themselves.
      if (this.closing) res.setHeader('connection', 'close');
      if (this.compiled?.routes !== this.routes.length) {
        const previous = this.compiled;
        const routes = this.routes.length;
        this.compiled = { routes, app: this.build() };
        void previous?.app.then((app) => app.close()).catch(() => undefined);
      }
      this.compiled.app.then(
        (app) => app.routing(req, res),
        (err: Error) => this.internalError(err, req, res),
      );
    };
    const server = tls ? createTlsServer({ cert: tls.cert, key: tls.key }, dispatch) : createServer(dispatch);
    this.server = server;
    server.on('connection', (socket: Socket) => {
      this.sockets.set(socket, { active: 0 });
      socket.once('close', () => this.sockets.delete(socket));
    });
    // A client gets 408 if its headers take over 20 s or its whole request over 30 s.
    server.keepAliveTimeout = 15_000;
    server.headersTimeout = 20_000;
    server.requestTimeout = 30_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    return (server.address() as AddressInfo).port;
  }

  /** A fastify instance serving the routes as they are now, and /openapi.json describing them. */
  private async build(): Promise<FastifyInstance> {
    const app = Fastify({
      logger: false,
      // A partition key may be 1024 characters, percent-encoded three times as long.
      routerOptions: { maxParamLength: 4096 },
      // What fastify refuses before routing (a malformed path), as problem details too.
      frameworkErrors: (err, request, reply) => {
        reply.hijack();
        const path = request.raw.url!.split('?')[0];
        const detail = err.code === 'FST_ERR_BAD_URL' ? `the path ${path} is not valid percent-encoding` : err.message;
        sendError(reply.raw, err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 400, detail, { instance: path });
      },
    });
    // Schemas describe; handlers check their own input and answer with problem details.
    app.setValidatorCompiler(() => () => true);
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', (_req, _payload, done) => done(null));
    await app.register(swagger, {
      openapi: {
        openapi: '3.1.0',
        info: this.info,
        components: {
          securitySchemes: {
            apiKey: {
              type: 'http',
              scheme: 'bearer',
              description: 'an API key (mesh apikey create), needed while keys are on (MESH_API_KEYS_FILE); x-mesh-scope names the scope a route needs',
            },
          },
        },
      },
    });
    for (const route of this.routes) {
      app.route({
        method: route.method as 'GET',
        url: route.path,
        schema: this.schemaOf(route),
        // Answered in onRequest, before fastify reads the body: the handler reads it itself.
        onRequest: (request, reply, done) => {
          reply.hijack();
          this.serve(route, request.raw, reply.raw, request.params as Record<string, string>);
          done();
        },
        handler: () => undefined,
      });
    }
    app.get('/openapi.json', { schema: { hide: true } }, (_request, reply) => {
      reply.hijack();
      sendJson(reply.raw, 200, app.swagger());
    });
    app.setNotFoundHandler((request, reply) => {
      reply.hijack();
      const path = request.raw.url!.split('?')[0];
      const allowed = this.allowedOn(path);
      if (allowed.length > 0)
        sendError(
          reply.raw,
          405,
          `method ${request.method} is not allowed on ${path}; use ${allowed.join(' or ')}`,
          { instance: path },
          { allow: allowed.join(', ') },
        );
      else sendError(reply.raw, 404, `no route for ${request.method} ${path}`, { instance: path });
    });
    app.setErrorHandler((err: FastifyError, request, reply) => {
      reply.hijack();
      const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
      if (status === 500) return this.internalError(err, request.raw, reply.raw);
      sendError(reply.raw, status, err.message, { instance: request.raw.url!.split('?')[0] });
    });
    await app.ready();
    return app;
  }

  private serve(route: Route, req: IncomingMessage, res: ServerResponse, params: Record<string, string>): void {
    let caller: Caller = { address: req.socket.remoteAddress ?? 'unknown' };
    if (this.guard) {
      const verdict = this.guard(req, route.access, `${route.method} ${route.path}`);
      if (!verdict.ok) return sendError(res, verdict.status, verdict.error, {}, verdict.headers);
      caller = verdict.caller;
    }
    Promise.resolve()
      .then(() => route.handler(req, res, params, caller))
      .catch((err: Error) => this.internalError(err, req, res));
  }

  private internalError(err: Error, req: IncomingMessage, res: ServerResponse): void {
    const id = randomUUID();
    this.onInternalError(err, id, `${req.method} ${(req.url ?? '/').split('?')[0]}`);
    sendError(res, 500, `internal error (id ${id}; the service's log has the details)`, { id });
  }

  /**
   * Stop serving, without cutting a request a client sent before the stop.
   * Called after the service has finished its in-flight work. A request can
   * be on its way on a keep-alive connection that looks idle here (sent, not
   * yet read), so connections are not cut at once: for a short grace every
   * answer closes its connection and requests still arriving are served (the
   * service answers 503 while it stops); then the server stops listening,
   * idle connections close, and what is left after a last bound (a client
   * stalled mid-body) is cut.
   */
  async close(graceMs = 500): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.closing = true;
    const deadline = Date.now() + graceMs;
    while (this.sockets.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    const busyUntil = Date.now() + graceMs;
    while ([...this.sockets.values()].some((s) => s.active > 0) && Date.now() < busyUntil) await new Promise((r) => setTimeout(r, 10));
    server.closeAllConnections();
    await closed;
    await this.compiled?.app.then((app) => app.close()).catch(() => undefined);
  }
}

function mapValues<T, U>(record: Record<string, T>, f: (value: T) => U): Record<string, U> {
  return Object.fromEntries(Object.entries(record).map(([k, v]) => [k, f(v)]));
}
