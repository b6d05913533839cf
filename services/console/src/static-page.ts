/**
 * The page: the shell (web/static: index.html, style.css) and the modules
 * tsc built from web/src into dist/public, read once at start, compressed
 * once with gzip, and served with an ETag. Nothing is fetched from
 * anywhere else: no CDN, no web fonts.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, relative } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { HttpApp } from '@mesh/runtime';

const Types: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

export interface PageAsset {
  path: string;
  type: string;
  body: Buffer;
  gzip: Buffer;
  etag: string;
}

/** Where the page's files are: the shell in the sources, the modules in the build. */
export const PageDirs = {
  shell: join(__dirname, '..', 'web', 'static'),
  modules: join(__dirname, 'public'),
};

function files(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const full = join(dir, name);
    return statSync(full).isDirectory() ? files(full) : [full];
  });
}

/** Every asset of the page by its URL path; `/` is index.html. */
export function loadPageAssets(dirs = PageDirs): Map<string, PageAsset> {
  const assets = new Map<string, PageAsset>();
  const add = (dir: string, prefix: string) => {
    for (const file of files(dir)) {
      const type = Types[extname(file)];
      if (!type) continue;
      const body = readFileSync(file);
      const path = `${prefix}/${relative(dir, file).split('\\').join('/')}`;
      assets.set(path, { path, type, body, gzip: gzipSync(body, { level: 9 }), etag: `"${createHash('sha1').update(body).digest('hex').slice(0, 16)}"` });
    }
  };
  add(dirs.shell, '');
  add(dirs.modules, '/app');
  const index = assets.get('/index.html');
  if (index) assets.set('/', index);
  return assets;
}

function serve(asset: PageAsset) {
  return (req: IncomingMessage, res: ServerResponse) => {
    const headers: Record<string, string> = {
      'content-type': asset.type,
      etag: asset.etag,
      'cache-control': 'no-cache',
      vary: 'accept-encoding',
      'x-content-type-options': 'nosniff',
    };
    if (asset.type.startsWith('text/html')) {
      // The page loads only its own files and talks only to this console.
      headers['content-security-policy'] =
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
      headers['referrer-policy'] = 'no-referrer';
    }
    if (req.headers['if-none-match'] === asset.etag) {
      res.writeHead(304, headers);
      res.end();
      return;
    }
    const gzip = /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
    const body = gzip ? asset.gzip : asset.body;
    res.writeHead(200, { ...headers, ...(gzip ? { 'content-encoding': 'gzip' } : {}), 'content-length': String(body.length) });
    res.end(body);
  };
}

/** Serve every asset, open to all: the page holds no data, the API behind it asks for the key. */
export function servePage(http: HttpApp, assets: Map<string, PageAsset>): void {
  for (const [path, asset] of assets) {
    const type = asset.type.split(';')[0];
    http.route('GET', path, serve(asset), 'open', {
      summary: `the console page: ${asset.path === '/index.html' ? 'its HTML' : asset.path}`,
      responses: { 200: { description: type, content: { [type]: { type: 'string' } } } },
    });
  }
}
