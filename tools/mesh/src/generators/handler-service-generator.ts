/**
 * `npx nx g @mesh/tool-mesh:handler-service <name> --types <patterns> --emits <type>`:
 * a new handler service, `services/<name>`: an Nx application (build, serve
 * with `-c 2|3|4` for more instances, test) whose one handler, `<name>`,
 * emits one `--emits` event carrying its input's data unchanged, so the
 * service works end to end as generated. It is registered where the repo
 * lists projects (root jest.config.js, tsconfig.build.json); `npm start`
 * finds it by its tag `type:handler-service`. HTTP_PORT defaults to the first
 * port from 8090 up that no other service of the repo uses.
 *
 * Written through Nx's Tree, so `--dry-run` shows the files and writes none.
 * Refuses, naming the problem and changing nothing: an invalid or reserved
 * name, one taken by a project or a handler, invalid type patterns.
 */
import { formatFiles, type Tree } from '@nx/devkit';
import { handlerServiceNameProblem } from '@mesh/contracts';
import { GeneratorError, typesAndEmits } from './handler-generator';
import { serviceFiles } from './handler-service-files';

export interface HandlerServiceGeneratorOptions {
  /** The service's name, and its handler's. */
  name: string;
  /** Event types its handler takes, comma-separated patterns. Default `<name>.requested`. */
  types?: string;
  /** Type of the event its handler emits. Default `<name>.done`. */
  emits?: string;
  /** Folder the service goes in. Default `services`. */
  directory?: string;
}

/** Where generated services' HTTP ports start: the built-in services use 8080-8085. */
export const FirstServicePort = 8090;
const DIRECTORY = /^[a-z0-9_-]+(\/[a-z0-9_-]+)*$/;

/** HTTP ports the services of the repo default to (httpSchema(n), httpPort: n). */
function usedPorts(tree: Tree): Set<number> {
  const used = new Set<number>();
  const scan = (dir: string) => {
    for (const child of tree.children(dir)) {
      const path = `${dir}/${child}`;
      if (tree.isFile(path)) {
        if (!/(^|\/)(main|config)\.ts$/.test(path)) continue;
        const text = tree.read(path, 'utf-8') ?? '';
        for (const m of text.matchAll(/httpSchema\((\d+)\)|httpPort: (\d+)/g)) used.add(Number(m[1] ?? m[2]));
      } else if (!['node_modules', 'dist'].includes(child)) scan(path);
    }
  };
  if (tree.exists('services')) scan('services');
  return used;
}

export function nextFreePort(tree: Tree): number {
  const used = usedPorts(tree);
  let port = FirstServicePort;
  while (used.has(port)) port++;
  return port;
}

/** Whether some project of the workspace is named `name`. */
function projectNamed(tree: Tree, name: string): string | undefined {
  const search = (dir: string): string | undefined => {
    for (const child of tree.children(dir)) {
      if (['node_modules', 'dist', '.git', '.nx'].includes(child)) continue;
      const path = dir === '' ? child : `${dir}/${child}`;
      if (child === 'project.json' && tree.isFile(path)) {
        try {
          if ((JSON.parse(tree.read(path, 'utf-8') ?? '{}') as { name?: string }).name === name) return path;
        } catch {
          // not a project file we can read
        }
      } else if (!tree.isFile(path)) {
        const found = search(path);
        if (found) return found;
      }
    }
    return undefined;
  };
  return search('');
}

/** A handler of this name in a service's handlers folder (`name: '<name>'`). */
function handlerNamed(tree: Tree, name: string): string | undefined {
  if (!tree.exists('services')) return undefined;
  for (const service of tree.children('services')) {
    const dir = `services/${service}/src/handlers`;
    if (!tree.exists(dir)) continue;
    for (const f of tree.children(dir).filter((f) => f.endsWith('.handler.ts'))) {
      if (tree.read(`${dir}/${f}`, 'utf-8')?.includes(`name: '${name}'`)) return `${dir}/${f}`;
    }
  }
  return undefined;
}

/** Root jest.config.js lists every project; the new one goes last before test/. */
function registerJestProject(tree: Tree, projectRoot: string): void {
  const path = 'jest.config.js';
  const text = tree.read(path, 'utf-8');
  if (text === null) return;
  const entry = `'<rootDir>/${projectRoot}'`;
  if (text.includes(entry)) return;
  const anchor = /(\n(\s*)'<rootDir>\/test',)/.exec(text);
  const list = /projects:\s*\[/.exec(text);
  if (!anchor && !list) throw new GeneratorError(`${path} has no projects list the generator knows: add ${entry} to it by hand`);
  tree.write(path, anchor ? text.replace(anchor[1], `\n${anchor[2]}${entry},${anchor[1]}`) : text.replace(list![0], `${list![0]}\n    ${entry},`));
}

/** tsconfig.build.json references every project `npm run build` builds. */
function registerBuild(tree: Tree, projectRoot: string): void {
  const path = 'tsconfig.build.json';
  const text = tree.read(path, 'utf-8');
  if (text === null) return;
  const config = JSON.parse(text) as { references?: { path: string }[] };
  const ref = `./${projectRoot}`;
  config.references ??= [];
  if (config.references.some((r) => r.path === ref)) return;
  const bench = config.references.findIndex((r) => r.path === './bench');
  config.references.splice(bench < 0 ? config.references.length : bench, 0, { path: ref });
  tree.write(path, `${JSON.stringify(config, null, 2)}\n`);
}

/** Check the options and write the service; returns the project's root. */
export function addHandlerService(tree: Tree, options: HandlerServiceGeneratorOptions): string {
  const name = options.name?.trim() ?? '';
  const problem = handlerServiceNameProblem(name) ?? (name === 'processor' ? 'is the processor, which exists already' : undefined);
  if (problem) throw new GeneratorError(`service name ${JSON.stringify(options.name)} ${problem}`);
  const directory = (options.directory ?? 'services').replace(/\/+$/, '');
  if (!DIRECTORY.test(directory)) throw new GeneratorError(`--directory ${JSON.stringify(options.directory)} is not a relative folder such as 'services'`);
  const { types, emits } = typesAndEmits(name, options);
  const projectRoot = `${directory}/${name}`;
  if (tree.exists(projectRoot)) throw new GeneratorError(`${projectRoot} exists already: choose another name`);
  const project = projectNamed(tree, name);
  if (project) throw new GeneratorError(`a project named '${name}' exists already (${project}): choose another name`);
  const handler = handlerNamed(tree, name);
  if (handler) throw new GeneratorError(`a handler named '${name}' exists already in ${handler}: choose another name`);

  const root = '../'.repeat(projectRoot.split('/').length);
  const files = serviceFiles({ name, projectRoot, root, types, emits, httpPort: nextFreePort(tree) });
  for (const [path, content] of Object.entries(files)) tree.write(`${projectRoot}/${path}`, content);
  registerJestProject(tree, projectRoot);
  registerBuild(tree, projectRoot);
  return projectRoot;
}

/** The Nx generator entry. */
export default async function handlerServiceGenerator(tree: Tree, options: HandlerServiceGeneratorOptions): Promise<() => void> {
  const projectRoot = addHandlerService(tree, options);
  await formatFiles(tree);
  return () => {
    console.log(`created handler service '${options.name}' in ${projectRoot}`);
    console.log(
      `next: npm install (links the new workspace package), npx nx test ${options.name}, then npx nx serve ${options.name} beside the mesh (npm start picks it up too)`,
    );
  };
}
