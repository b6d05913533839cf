/**
 * The promise of a small page: everything the first load fetches (the
 * shell and every module tsc built for it) is under 300 KB with gzip, as
 * the console serves it. Reads the build: `npm test` builds first.
 */
import { join } from 'node:path';
import { loadPageAssets } from './static-page';

const Budget = 300 * 1024;

describe('the console page', () => {
  const assets = loadPageAssets({ shell: join(__dirname, '..', 'web', 'static'), modules: join(__dirname, '..', 'dist', 'public') });

  it('is built: the shell and its entry module are there', () => {
    expect([...assets.keys()]).toEqual(expect.arrayContaining(['/', '/index.html', '/style.css', '/app/main.js']));
  });

  it('loads in under 300 KB compressed, with no file fetched from elsewhere', () => {
    const unique = new Set([...assets.values()]);
    const total = [...unique].reduce((n, a) => n + a.gzip.length, 0);
    expect(total).toBeLessThan(Budget);
    for (const a of unique) expect(a.body.toString('utf8')).not.toMatch(/(src|href)=["']?(https?:)?\/\//);
  });

  it('imports every module it needs from files the console serves', () => {
    for (const a of assets.values()) {
      if (!a.path.endsWith('.js')) continue;
      for (const m of a.body.toString('utf8').matchAll(/from '(\.{1,2}\/[^']+)'/g)) {
        const target = new URL(m[1], `http://console${a.path}`).pathname;
        expect(assets.has(target) ? target : `${a.path} imports ${m[1]}, which is not served`).toBe(target);
      }
    }
  });
});
