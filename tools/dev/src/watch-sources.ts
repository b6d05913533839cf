/**
 * What `npm start` watches: the sources of the services and the libraries.
 * A change is debounced (an editor saves several files at once), then
 * reported as the set of services whose code changed: a service's own
 * folder names that service (`src/`, and `web/` for the console's page), a
 * library names every service (they all use the libraries). Tests and build
 * output are ignored.
 */
import { watch, type FSWatcher } from 'node:fs';
import { join, sep } from 'node:path';

export interface WatchOptions {
  repoRoot: string;
  services: readonly string[];
  /** Quiet time after the last change before `onChange` (ms). */
  debounceMs: number;
  onChange(services: Set<string>, files: string[]): void;
}

/** Which services a changed path (relative to the repository) concerns; none for tests and build output. */
export function servicesOf(relPath: string, services: readonly string[]): string[] {
  const parts = relPath.split(sep).join('/').split('/');
  if (parts.includes('dist') || parts.includes('node_modules') || /\.spec\.ts$/.test(relPath) || !/\.(ts|js|json|html|css)$/.test(relPath)) return [];
  if (parts[0] === 'services' && services.includes(parts[1]) && (parts[2] === 'src' || parts[2] === 'web')) return [parts[1]];
  if (parts[0] === 'libs' && parts[2] === 'src') return [...services];
  return [];
}

/** Start watching; returns a function that stops. */
export function watchSources(o: WatchOptions): () => void {
  const watchers: FSWatcher[] = [];
  let pending = new Set<string>();
  let files: string[] = [];
  let timer: NodeJS.Timeout | undefined;
  const seen = (root: string) => (_event: string, name: string | Buffer | null) => {
    if (name === null) return;
    const rel = join(root, name.toString());
    const hit = servicesOf(rel, o.services);
    if (hit.length === 0) return;
    for (const s of hit) pending.add(s);
    files.push(rel);
    clearTimeout(timer);
    timer = setTimeout(() => {
      const changed = pending;
      const changedFiles = [...new Set(files)];
      pending = new Set();
      files = [];
      o.onChange(changed, changedFiles);
    }, o.debounceMs);
  };
  for (const root of ['services', 'libs']) {
    // Recursive watching is native on Linux from Node 20.
    watchers.push(watch(join(o.repoRoot, root), { recursive: true }, seen(root)));
  }
  return () => {
    clearTimeout(timer);
    for (const w of watchers) w.close();
  };
}
