/**
 * The files of a generated handler service, as text: what
 * handler-service-generator.ts writes under `<directory>/<name>/`. `root` is
 * the way back to the workspace root from there (`../../`).
 */

export interface ServiceFileOptions {
  name: string;
  /** `services/refunds`. */
  projectRoot: string;
  /** `../../`. */
  root: string;
  types: string[];
  emits: string;
  httpPort: number;
}

export const camel = (name: string) => name.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());

const quoted = (list: readonly string[]) => `[${list.map((t) => `'${t}'`).join(', ')}]`;

export function serviceFiles(o: ServiceFileOptions): Record<string, string> {
  const id = camel(o.name);
  const example = o.types[0].replace(/\*/g, 'example').replace(/>/g, 'example');
  const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;
  const references = ['contracts', 'config', 'messaging', 'runtime', 'telemetry'].map((lib) => ({ path: `${o.root}libs/${lib}` }));
  return {
    'package.json': json({ name: `@mesh/${o.name}`, version: '0.1.0', private: true, main: 'dist/main.js' }),
    'project.json': json({
      name: o.name,
      $schema: `${o.root}node_modules/nx/schemas/project-schema.json`,
      sourceRoot: `${o.projectRoot}/src`,
      projectType: 'application',
      tags: ['type:service', 'type:handler-service'],
      targets: {
        build: { executor: 'nx:run-commands', options: { command: `tsc -b ${o.projectRoot}` }, outputs: ['{projectRoot}/dist'] },
        test: { executor: '@nx/jest:jest', options: { jestConfig: `${o.projectRoot}/jest.config.js`, passWithNoTests: false } },
        serve: {
          executor: 'nx:run-commands',
          dependsOn: ['build'],
          continuous: true,
          options: { command: `node ${o.projectRoot}/dist/main.js` },
          // `-c 2` (3, 4): one more instance beside the first, on a free port; it shares the partitions.
          configurations: { '2': { env: { HTTP_PORT: '0' } }, '3': { env: { HTTP_PORT: '0' } }, '4': { env: { HTTP_PORT: '0' } } },
        },
      },
    }),
    'tsconfig.json': json({
      extends: `${o.root}tsconfig.base.json`,
      compilerOptions: { rootDir: 'src', outDir: 'dist', tsBuildInfoFile: 'dist/tsconfig.tsbuildinfo' },
      include: ['src/**/*.ts'],
      exclude: ['src/**/*.spec.ts'],
      references,
    }),
    'jest.config.js': `module.exports = { ...require('${o.root}jest.preset.js'), displayName: '${o.name}', rootDir: __dirname };\n`,
    'src/main.ts': `/**
 * ${o.name}: a handler service of the mesh. It runs the handlers in
 * \`handlers/\` on its own partitions of MESH_ROUTED (consumers
 * \`${o.name}-p<NN>\`) and publishes what they emit to MESH_PROCESSED. At
 * start it declares its handlers in \`mesh_routes\`: the router sends their
 * events here from then on. Run more instances to scale it; they share its
 * partitions.
 */
import { runHandlerService } from '@mesh/runtime';
import { handlers } from './handlers';

void runHandlerService({ name: '${o.name}', handlers, httpPort: ${o.httpPort} });
`,
    'src/handlers/index.ts': `/** The handlers ${o.name} hosts; a duplicate name fails start-up. */
import type { AnyHandlerDefinition } from '@mesh/runtime';
import ${id} from './${o.name}.handler';

export const handlers: readonly AnyHandlerDefinition[] = [${id}];
`,
    [`src/handlers/${o.name}.handler.ts`]: `/**
 * The '${o.name}' handler: takes ${o.types.map((t) => `\`${t}\``).join(', ')} and emits \`${o.emits}\`.
 *
 * As generated it passes the event's data on unchanged: put your logic in
 * \`handle\`. Throw PermanentError for an event that can never succeed
 * (dead-lettered at once), RetryableError for a passing failure (retried
 * with backoff while the key's later events wait). Return an event, a list
 * of them, or nothing.
 */
import { defineHandler } from '@mesh/runtime';

export default defineHandler({
  name: '${o.name}',
  types: ${quoted(o.types)},
  description: '${o.name}: emits ${o.emits} with the data it takes.',
  retry: { maxAttempts: 5, initialDelayMs: 200 },
  handle(event) {
    return { type: '${o.emits}', data: event.data };
  },
});
`,
    [`src/handlers/${o.name}.handler.spec.ts`]: `// Through the test kit (@mesh/testing): the service's own worker, in memory, on a clock the test moves.
import { handlerTakes } from '@mesh/runtime';
import { createHandlerHarness } from '@mesh/testing';
import ${id} from './${o.name}.handler';

const event = (data: unknown) => ({ type: '${example}', partitionkey: 'k-1', data });

describe('${o.name} handler', () => {
  it('takes ${example}', () => {
    expect(handlerTakes(${id}, '${example}')).toBe(true);
  });

  it('emits one ${o.emits} carrying the data unchanged, for the same key', async () => {
    const mesh = createHandlerHarness({ handlers: [${id}] });
    const data = { id: 'x-1', amount: 3, note: { nested: true } };
    await mesh.send(event(data));
    expect(mesh.emitted().map((o) => [o.type, o.data, o.partitionkey])).toEqual([['${o.emits}', data, 'k-1']]);
    expect(mesh.deadLetters()).toEqual([]);
  });
});
`,
  };
}
