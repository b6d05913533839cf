import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { addHandler, GeneratorError, HandlersDir, register, type GeneratorTree } from './handler-generator';

const Root = resolve(__dirname, '../../../..');

/** An in-memory tree holding the repository's real handlers directory. */
function repoTree(): GeneratorTree & { files: Map<string, string> } {
  const files = new Map<string, string>();
  for (const f of readdirSync(join(Root, HandlersDir))) files.set(`${HandlersDir}/${f}`, readFileSync(join(Root, HandlersDir, f), 'utf8'));
  return {
    files,
    exists: (p) => files.has(p),
    read: (p) => files.get(p) ?? null,
    write: (p, c) => void files.set(p, c),
    children: (dir) => [...files.keys()].filter((p) => p.startsWith(`${dir}/`)).map((p) => p.slice(dir.length + 1)),
  };
}

describe('the handler generator', () => {
  it('writes the handler and its test, and adds it to the registry after the others', () => {
    const tree = repoTree();
    const written = addHandler(tree, { name: 'fraud-check', types: 'payment.made, payment.retried', emits: 'payment.checked' });

    expect(written).toEqual([`${HandlersDir}/fraud-check.handler.ts`, `${HandlersDir}/fraud-check.handler.spec.ts`, `${HandlersDir}/index.ts`]);
    const handler = tree.files.get(`${HandlersDir}/fraud-check.handler.ts`)!;
    expect(handler).toContain("name: 'fraud-check',");
    expect(handler).toContain("types: ['payment.made', 'payment.retried'],");
    expect(handler).toContain("return { type: 'payment.checked'");
    const spec = tree.files.get(`${HandlersDir}/fraud-check.handler.spec.ts`)!;
    expect(spec).toContain("import fraudCheck from './fraud-check.handler';");
    // Its test runs through the test kit.
    expect(spec).toContain("import { createHandlerHarness } from '@mesh/testing';");
    expect(spec).toContain('createHandlerHarness({ handlers: [fraudCheck] })');
    const index = tree.files.get(`${HandlersDir}/index.ts`)!;
    expect(index).toContain("import fraudCheck from './fraud-check.handler';");
    expect(index).toMatch(/= \[orders, paymentsByCustomer, fraudScore, shippingQuote, fraudCheck\];/);
  });

  it('defaults the types to <name>.requested and the output to <name>.done', () => {
    const tree = repoTree();
    addHandler(tree, { name: 'refunds' });
    const handler = tree.files.get(`${HandlersDir}/refunds.handler.ts`)!;
    expect(handler).toContain("types: ['refunds.requested'],");
    expect(handler).toContain("type: 'refunds.done'");
  });

  it.each([
    [{ name: 'Refunds' }, /handler name "Refunds" is not valid: use lowercase letters and digits in words joined by '-'/],
    [{ name: 'payments-by-customer' }, /a handler named 'payments-by-customer' exists already in .*rekey\.handler\.ts: choose another name/],
    [{ name: 'orders' }, /orders\.handler\.ts exists already: choose another name/],
    [{ name: 'refunds', types: 'refund.>.x' }, /--types: "refund.>.x" '>' may only be the last token/],
    [{ name: 'refunds', types: ' , ' }, /--types is empty/],
    [{ name: 'refunds', emits: 'refund.*' }, /--emits: "refund.\*" is not an event type/],
  ])('refuses %j, saying what is wrong and changing nothing', (options, message) => {
    const tree = repoTree();
    const before = new Map(tree.files);
    expect(() => addHandler(tree, options)).toThrow(GeneratorError);
    expect(() => addHandler(tree, options)).toThrow(message);
    expect(tree.files).toEqual(before);
  });

  it('asks for a hand edit when the registry is not in the shape it knows', () => {
    const tree = repoTree();
    tree.files.set(`${HandlersDir}/index.ts`, 'export const handlers = loadAll();\n');
    expect(() => addHandler(tree, { name: 'refunds' })).toThrow(/index\.ts has no 'handlers' array .*add refunds to it by hand/);
  });
});

describe('the registry edit', () => {
  it('survives the list formatted one entry per line, with a trailing comma and comments', () => {
    const index = [
      "import type { AnyHandlerDefinition } from '@mesh/runtime';",
      "import orders from './orders.handler'; // the first",
      '',
      'export const handlers: readonly AnyHandlerDefinition[] = [',
      '  orders, // keep first',
      '  // more below',
      '];',
      '',
    ].join('\n');
    const out = register(index, 'fraud-check');
    expect(out).toContain("import orders from './orders.handler'; // the first\nimport fraudCheck from './fraud-check.handler';");
    expect(out).toMatch(/\[\n {2}orders, fraudCheck, \/\/ keep first\n {2}\/\/ more below\n\];/);
  });

  it('takes an empty list, a list `as const` or `satisfies`, and a file whose imports are not the handlers', () => {
    expect(register("import type { X } from 'y';\nexport const handlers = [];\n", 'a-b')).toBe(
      "import type { X } from 'y';\nimport aB from './a-b.handler';\nexport const handlers = [aB];\n",
    );
    expect(register('export const handlers = [one] as const;\n', 'two')).toBe(
      "import two from './two.handler';\nexport const handlers = [one, two] as const;\n",
    );
    expect(register('export const handlers = [one] satisfies unknown[];\n', 'two')).toContain('[one, two] satisfies');
  });

  it('refuses, saying what to do, a file without a handlers array or already listing the handler', () => {
    expect(() => register('export const others = [a];\n', 'two')).toThrow(/has no 'handlers' array .*: add two to it by hand/);
    expect(() => register('export const handlers = [two];\n', 'two')).toThrow(/lists two already/);
  });
});
