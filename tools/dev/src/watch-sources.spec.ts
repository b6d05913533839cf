import { join } from 'node:path';
import { servicesOf } from './watch-sources';

const services = ['processor', 'ingest', 'router', 'aggregator', 'console'];

describe('servicesOf', () => {
  it('names the service whose sources changed, the console for its page too, and every service for a library', () => {
    expect(servicesOf(join('services', 'router', 'src', 'main.ts'), services)).toEqual(['router']);
    expect(servicesOf(join('services', 'console', 'web', 'src', 'views', 'overview.ts'), services)).toEqual(['console']);
    expect(servicesOf(join('services', 'console', 'web', 'static', 'style.css'), services)).toEqual(['console']);
    expect(servicesOf(join('libs', 'operations', 'src', 'redrive.ts'), services)).toEqual(services);
  });

  it('ignores tests, build output and other files', () => {
    expect(servicesOf(join('services', 'router', 'src', 'main.spec.ts'), services)).toEqual([]);
    expect(servicesOf(join('services', 'console', 'dist', 'public', 'main.js'), services)).toEqual([]);
    expect(servicesOf(join('services', 'router', 'README.md'), services)).toEqual([]);
    expect(servicesOf(join('services', 'sink', 'src', 'main.ts'), services)).toEqual([]);
  });
});
