/**
 * The handler services `npm start` runs besides the processor: every
 * `services/<name>/project.json` tagged `type:handler-service` (as the
 * generator writes it), with the HTTP port its main defaults to
 * (`runHandlerService({ ..., httpPort: 8090 })`).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface HandlerServiceProject {
  name: string;
  /** Its built entry, `services/<name>/dist/main.js`. */
  main: string;
  /** HTTP_PORT it defaults to. */
  port: number;
}

export const HandlerServiceTag = 'type:handler-service';

export function handlerServicesIn(repoRoot: string): HandlerServiceProject[] {
  const dir = join(repoRoot, 'services');
  if (!existsSync(dir)) return [];
  const found: HandlerServiceProject[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    const projectFile = join(dir, entry.name, 'project.json');
    if (!existsSync(projectFile)) continue;
    let project: { name?: string; tags?: string[] };
    try {
      project = JSON.parse(readFileSync(projectFile, 'utf8')) as typeof project;
    } catch (err) {
      throw new Error(`${projectFile} is not JSON: ${(err as Error).message}`, { cause: err });
    }
    if (!project.tags?.includes(HandlerServiceTag) || project.name === 'processor') continue;
    const mainTs = join(dir, entry.name, 'src', 'main.ts');
    const port = existsSync(mainTs) ? /httpPort: (\d+)/.exec(readFileSync(mainTs, 'utf8'))?.[1] : undefined;
    if (port === undefined) throw new Error(`${mainTs} does not say its HTTP port (runHandlerService({ ..., httpPort: <port> })): npm start cannot place it`);
    found.push({ name: project.name ?? entry.name, main: join(dir, entry.name, 'dist', 'main.js'), port: Number(port) });
  }
  return found.sort((a, b) => a.port - b.port);
}
