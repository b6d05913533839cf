/**
 * A small HTTP layer on node:http (or node:https): exact routes with
 * `:params`, JSON answers, bounded bodies. Every service serves its API,
 * /healthz, /readyz and /metrics through it. Each route declares the access
 * it needs (`open` or an API key scope); a guard, when one is set, decides
 * before the handler runs.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { ApiKeyEntry } from './api-keys/key-file';
import type { RouteAccess } from './api-keys/scopes';

/** Who is calling: the client's address, and its API key while keys are on. */
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

interface Route {
  method: string;
  path: string;
  parts: string[];
  handler: RouteHandler;
  access: RouteAccess;
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

export function sendError(
  res: ServerResponse,
  status: number,
  error: string,
  details: Record<string, unknown> = {},
  headers: Record<string, string> = {},
): void {
  sendJson(res, status, { error, ...details }, headers);
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

export class HttpApp {
  private readonly routes: Route[] = [];
  private server?: Server | TlsServer;
  private guard?: Guard;
  /**
   * Told of a handler's unexpected error. The client gets a plain 500 with
   * an id to quote, never the error's text (it may name internals).
   */
  onInternalError: (err: Error, id: string, what: string) => void = () => undefined;

  /**
   * Serve `method path` with `handler`. `access` is what a caller needs
   * while API keys are on: `open` for anyone, else a key with that scope
   * (or admin). A route that says nothing needs admin: forgetting to
   * declare access never opens a route.
   */
  route(method: string, path: string, handler: RouteHandler, access: RouteAccess = 'admin'): this {
    this.routes.push({ method, path, parts: path.split('/'), handler, access });
    return this;
  }

  /** Check every request against its route's access before the handler runs (API keys). */
  useGuard(guard: Guard): this {
    this.guard = guard;
    return this;
  }

  private match(method: string, path: string): { route?: Route; params: Record<string, string>; allowed: string[] } {
    const parts = path.split('/');
    const allowed: string[] = [];
    for (const route of this.routes) {
      if (route.parts.length !== parts.length) continue;
      const params: Record<string, string> = {};
      let ok = true;
      for (let i = 0; i < parts.length && ok; i++) {
        const want = route.parts[i];
        if (want.startsWith(':')) {
          try {
            params[want.slice(1)] = decodeURIComponent(parts[i]);
          } catch {
            ok = false;
          }
        } else ok = want === parts[i];
      }
      if (!ok) continue;
      if (route.method === method) return { route, params, allowed };
      allowed.push(route.method);
    }
    return { params: {}, allowed };
  }

  /** Listen on `host:port`, with HTTPS when `tls` is given; resolves to the port. */
  async listen(port: number, host: string, tls?: TlsFiles): Promise<number> {
    const serve = (req: IncomingMessage, res: ServerResponse) => {
      const path = (req.url ?? '/').split('?')[0];
      // HEAD is GET without the body (node:http leaves the body out of a HEAD answer).
      const method = req.method === 'HEAD' ? 'GET' : (req.method ?? 'GET');
      const { route, params, allowed } = this.match(method, path);
      if (!route) {
        if (allowed.length > 0)
          sendError(res, 405, `method ${req.method} is not allowed on ${path}; use ${allowed.join(' or ')}`, {}, { allow: allowed.join(', ') });
        else sendError(res, 404, `no route for ${req.method} ${path}`);
        return;
      }
      let caller: Caller = { address: req.socket.remoteAddress ?? 'unknown' };
      if (this.guard) {
        const verdict = this.guard(req, route.access, `${route.method} ${route.path}`);
        if (!verdict.ok) return sendError(res, verdict.status, verdict.error, {}, verdict.headers);
        caller = verdict.caller;
      }
      Promise.resolve()
        .then(() => route.handler(req, res, params, caller))
        .catch((err: Error) => {
          const id = randomUUID();
          this.onInternalError(err, id, `${req.method} ${path}`);
          sendError(res, 500, `internal error (id ${id}; the service's log has the details)`, { id });
        });
    };
    this.server = tls ? createTlsServer({ cert: tls.cert, key: tls.key }, serve) : createServer(serve);
    // A client gets 408 if its headers take over 20 s or its whole request over 30 s.
    this.server.keepAliveTimeout = 15_000;
    this.server.headersTimeout = 20_000;
    this.server.requestTimeout = 30_000;
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(port, host, () => resolve());
    });
    return (this.server.address() as AddressInfo).port;
  }

  /**
   * Stop accepting connections and close the open ones. Called after the
   * service has finished its in-flight work, so what is left (a client
   * stalled mid-body, idle keep-alives) is cut rather than waited for.
   */
  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }
}
