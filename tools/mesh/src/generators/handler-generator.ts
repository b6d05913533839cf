/**
 * `npx nx g @mesh/tool-mesh:handler <name>`: adds a subject handler to the
 * processor, as README "Adding a handler" describes by hand: the handler
 * file, a unit test that passes as generated, and its place in the registry
 * (`handlers/index.ts`). It refuses, naming the problem, a name that is not
 * kebab-case or is taken, and type patterns that are not valid.
 */
import { typePatternProblem } from '@mesh/contracts';
import { formatFiles, type Tree } from '@nx/devkit';
import ts from 'typescript';

/** The part of Nx's generator Tree (@nx/devkit) the checks and writes use. */
export type GeneratorTree = Pick<Tree, 'exists' | 'read' | 'write' | 'children'>;

export interface HandlerGeneratorOptions {
  /** kebab-case; names the subject `mesh.routed.processor.<p>.<name>` and the file. */
  name: string;
  /** Event types it takes, comma-separated patterns (`*` one token, `>` the rest). Default `<name>.requested`. */
  types?: string;
  /** Type of the event it emits. Default `<name>.done`. */
  emits?: string;
}

export const HandlersDir = 'services/processor/src/handlers';
const NAME = /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/;
const TYPE = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;

export class GeneratorError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GeneratorError';
  }
}

/**
 * `--types` (default `<name>.requested`) and `--emits` (default `<name>.done`),
 * checked: the same for a handler and a handler service.
 */
export function typesAndEmits(name: string, options: { types?: string; emits?: string }): { types: string[]; emits: string } {
  const types = (options.types ?? `${name}.requested`)
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
  if (types.length === 0) throw new GeneratorError(`--types is empty: give one or more event type patterns, such as 'refund.requested' or 'refund.*'`);
  for (const t of types) {
    const problem = typePatternProblem(t);
    if (problem) throw new GeneratorError(`--types: ${JSON.stringify(t)} ${problem}`);
  }
  const emits = options.emits ?? `${name}.done`;
  if (!TYPE.test(emits))
    throw new GeneratorError(
      `--emits: ${JSON.stringify(emits)} is not an event type: use dot-separated tokens of letters, digits, '_' or '-', such as 'refund.approved'`,
    );
  return { types, emits };
}

const camel = (name: string) => name.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());

function handlerFile(name: string, types: string[], emits: string): string {
  return `/**
 * The '${name}' handler: takes ${types.map((t) => `\`${t}\``).join(', ')} and emits \`${emits}\`.
 *
 * Throw PermanentError for an event that can never succeed (dead-lettered at
 * once), RetryableError for a passing failure (retried with backoff while the
 * key's later events wait). Return an event, a list of them, or nothing.
 */
import { defineHandler, fields, PermanentError } from '@mesh/runtime';

const schema = fields({ id: 'string', amount: 'number' });

export default defineHandler({
  name: '${name}',
  types: ${JSON.stringify(types).replace(/"/g, "'").replace(/,/g, ', ')},
  description: 'TODO: what ${name} does.',
  schema,
  retry: { maxAttempts: 5, initialDelayMs: 200 },
  handle(event) {
    const data = event.data!;
    if (data.amount < 0) throw new PermanentError(\`${name}: \${data.id} has a negative amount \${data.amount}\`);
    return { type: '${emits}', data: { ...data } };
  },
});
`;
}

function specFile(name: string, types: string[], emits: string): string {
  const example = types[0].replace(/\*/g, 'example').replace(/>/g, 'example');
  const id = camel(name);
  return `// Through the test kit (@mesh/testing): the processor's own worker, in memory, on a clock the test moves.
import { Headers } from '@mesh/contracts';
import { handlerTakes } from '@mesh/runtime';
import { createHandlerHarness } from '@mesh/testing';
import ${id} from './${name}.handler';

const event = (data: unknown) => ({ type: '${example}', partitionkey: 'key-1', data });

describe('${name} handler', () => {
  it('takes ${example}', () => {
    expect(handlerTakes(${id}, '${example}')).toBe(true);
  });

  it('emits ${emits} with the data', async () => {
    const mesh = createHandlerHarness({ handlers: [${id}] });
    await mesh.send(event({ id: 'x-1', amount: 3 }));
    expect(mesh.emitted().map((o) => [o.type, o.data])).toEqual([['${emits}', { id: 'x-1', amount: 3 }]]);
  });

  it('dead-letters a negative amount at once', async () => {
    const mesh = createHandlerHarness({ handlers: [${id}] });
    await mesh.send(event({ id: 'x-1', amount: -1 }));
    expect(mesh.retries()).toEqual([]);
    expect(mesh.deadLetters().map((d) => [d.headers[Headers.errorKind], d.headers[Headers.attempts]])).toEqual([['PermanentError', '1']]);
    expect(mesh.emitted()).toEqual([]);
  });
});
`;
}

/**
 * Adds the import and the list entry to handlers/index.ts, found by
 * TypeScript's parser rather than by the text's layout: the file may be
 * formatted any way (one entry per line, a trailing comma, comments), and
 * the list may be typed or `as const`.
 */
export function register(index: string, name: string): string {
  const id = camel(name);
  const source = ts.createSourceFile('index.ts', index, ts.ScriptTarget.Latest, true);
  const imports = source.statements.filter(ts.isImportDeclaration);
  let list: ts.ArrayLiteralExpression | undefined;
  for (const statement of source.statements) {
    if (!ts.isVariableStatement(statement)) continue;
    for (const d of statement.declarationList.declarations) {
      if (!ts.isIdentifier(d.name) || d.name.text !== 'handlers' || !d.initializer) continue;
      let init: ts.Expression = d.initializer;
      while (ts.isAsExpression(init) || ts.isSatisfiesExpression(init) || ts.isParenthesizedExpression(init)) init = init.expression;
      if (ts.isArrayLiteralExpression(init)) list = init;
    }
  }
  if (!list) {
    throw new GeneratorError(`${HandlersDir}/index.ts has no 'handlers' array (export const handlers = [...]): add ${id} to it by hand`);
  }
  if (list.elements.some((e) => ts.isIdentifier(e) && e.text === id)) throw new GeneratorError(`${HandlersDir}/index.ts lists ${id} already`);
  // Edits from the end, so earlier positions stay valid.
  const elements = list.elements;
  const entryAt = elements.length > 0 ? elements[elements.length - 1].getEnd() : list.getStart(source) + 1;
  const entry = elements.length > 0 ? `, ${id}` : id;
  let text = index.slice(0, entryAt) + entry + index.slice(entryAt);
  // After the line of the last import (and a comment that ends it).
  const lastImportEnd = imports.length > 0 ? imports[imports.length - 1].getEnd() : 0;
  const lineEnd = text.indexOf('\n', lastImportEnd);
  const importAt = imports.length === 0 ? 0 : lineEnd === -1 ? text.length : lineEnd;
  const line = `import ${id} from './${name}.handler';`;
  text = importAt > 0 ? `${text.slice(0, importAt)}\n${line}${text.slice(importAt)}` : `${line}\n${text}`;
  return text;
}

export function addHandler(tree: GeneratorTree, options: HandlerGeneratorOptions): string[] {
  const name = options.name?.trim() ?? '';
  if (!NAME.test(name)) {
    throw new GeneratorError(
      `handler name ${JSON.stringify(options.name)} is not valid: use lowercase letters and digits in words joined by '-', such as 'refunds' or 'fraud-check'`,
    );
  }
  const { types, emits } = typesAndEmits(name, options);

  const file = `${HandlersDir}/${name}.handler.ts`;
  if (tree.exists(file)) throw new GeneratorError(`${file} exists already: choose another name`);
  for (const f of tree.children(HandlersDir).filter((f) => f.endsWith('.handler.ts'))) {
    if (tree.read(`${HandlersDir}/${f}`, 'utf-8')?.includes(`name: '${name}'`)) {
      throw new GeneratorError(`a handler named '${name}' exists already in ${HandlersDir}/${f}: choose another name`);
    }
  }
  const indexPath = `${HandlersDir}/index.ts`;
  const index = tree.read(indexPath, 'utf-8');
  if (index === null) throw new GeneratorError(`${indexPath} not found: run the generator from the root of the mesh repository`);

  tree.write(file, handlerFile(name, types, emits));
  tree.write(`${HandlersDir}/${name}.handler.spec.ts`, specFile(name, types, emits));
  tree.write(indexPath, register(index, name));
  return [file, `${HandlersDir}/${name}.handler.spec.ts`, indexPath];
}

/** The Nx generator entry. */
export default async function handlerGenerator(tree: Tree, options: HandlerGeneratorOptions): Promise<() => void> {
  const written = addHandler(tree, options);
  // The repo's Prettier config, as every file of it is formatted.
  await formatFiles(tree);
  return () => {
    console.log(`added handler '${options.name}': ${written.join(', ')}`);
    console.log('next: npm test, then restart the processor (npx nx serve processor)');
  };
}
