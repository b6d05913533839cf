import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import type { Tree } from '@nx/devkit';
import { createTreeWithEmptyWorkspace } from '@nx/devkit/testing';
import { GeneratorError } from './handler-generator';
import handlerServiceGenerator, { addHandlerService, FirstServicePort } from './handler-service-generator';

const Root = resolve(__dirname, '../../../..');
/** The service the generator made, committed and run end to end by test/handler-service.e2e.spec.ts. */
const Fixture = 'test/fixtures/payouts';
const FixtureOptions = { name: 'payouts', types: 'payout.requested', emits: 'payout.sent', directory: 'test/fixtures' };

/** An in-memory workspace with the repo's files the generator reads or edits. */
function workspace(): Tree {
  const tree = createTreeWithEmptyWorkspace();
  for (const f of ['jest.config.js', 'tsconfig.build.json']) tree.write(f, readFileSync(join(Root, f), 'utf8'));
  for (const service of ['ingest', 'router', 'processor', 'aggregator', 'sink']) {
    const dir = `services/${service}`;
    tree.write(`${dir}/project.json`, readFileSync(join(Root, dir, 'project.json'), 'utf8'));
    for (const f of ['src/main.ts', 'src/config.ts']) tree.write(`${dir}/${f}`, readFileSync(join(Root, dir, f), 'utf8'));
  }
  const handlers = 'services/processor/src/handlers';
  for (const f of readdirSync(join(Root, handlers))) tree.write(`${handlers}/${f}`, readFileSync(join(Root, handlers, f), 'utf8'));
  return tree;
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const path = join(dir, f);
    if (f === 'dist' || f === 'node_modules') return [];
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

describe('the handler-service generator', () => {
  it('creates services/<name>: project, config, main, one handler and its test, on the next free port from 8090', async () => {
    const tree = workspace();
    await handlerServiceGenerator(tree, { name: 'refunds', types: 'refund.requested', emits: 'refund.approved' });

    const project = JSON.parse(tree.read('services/refunds/project.json', 'utf-8')!);
    expect(project).toMatchObject({ name: 'refunds', projectType: 'application', tags: ['type:service', 'type:handler-service'] });
    expect(project.targets.serve.options.command).toBe('node services/refunds/dist/main.js');
    expect(Object.keys(project.targets.serve.configurations)).toEqual(['2', '3', '4']);
    expect(project.targets.build.options.command).toBe('tsc -b services/refunds');
    expect(JSON.parse(tree.read('services/refunds/tsconfig.json', 'utf-8')!).extends).toBe('../../tsconfig.base.json');
    expect(tree.read('services/refunds/src/main.ts', 'utf-8')).toContain(`runHandlerService({ name: 'refunds', handlers, httpPort: ${FirstServicePort} })`);
    const handler = tree.read('services/refunds/src/handlers/refunds.handler.ts', 'utf-8')!;
    expect(handler).toContain("types: ['refund.requested'],");
    expect(handler).toContain("return { type: 'refund.approved', data: event.data };");
    expect(tree.read('services/refunds/src/handlers/index.ts', 'utf-8')).toContain('[refunds]');
    expect(tree.exists('services/refunds/src/handlers/refunds.handler.spec.ts')).toBe(true);
    expect(tree.read('jest.config.js', 'utf-8')).toContain("'<rootDir>/services/refunds',\n    '<rootDir>/test',");
    expect(JSON.parse(tree.read('tsconfig.build.json', 'utf-8')!).references).toContainEqual({ path: './services/refunds' });
  });

  it('gives the next service the next port', () => {
    const tree = workspace();
    addHandlerService(tree, { name: 'refunds' });
    addHandlerService(tree, { name: 'fraud-check', types: 'payment.*' });
    expect(tree.read('services/fraud-check/src/main.ts', 'utf-8')).toContain(`httpPort: ${FirstServicePort + 1}`);
    expect(tree.read('services/refunds/src/handlers/refunds.handler.ts', 'utf-8')).toContain("types: ['refunds.requested'],");
    expect(tree.read('services/refunds/src/handlers/refunds.handler.ts', 'utf-8')).toContain("type: 'refunds.done'");
  });

  it.each([
    [{ name: 'Refunds' }, /service name "Refunds" is not a valid service name: use lowercase letters and digits in words joined by '-'/],
    [{ name: 'router' }, /service name "router" is taken by the mesh itself; reserved: router, aggregator, ingest/],
    [{ name: 'processor' }, /service name "processor" is the processor, which exists already/],
    [{ name: 'orders' }, /a handler named 'orders' exists already in services\/processor\/src\/handlers\/orders\.handler\.ts/],
    [{ name: 'refunds', types: 'refund.>.x' }, /--types: "refund.>.x" '>' may only be the last token/],
    [{ name: 'refunds', types: ' , ' }, /--types is empty/],
    [{ name: 'refunds', emits: 'refund.*' }, /--emits: "refund.\*" is not an event type/],
  ])('refuses %j, saying what is wrong and writing nothing', (options, message) => {
    const tree = workspace();
    expect(() => addHandlerService(tree, options)).toThrow(GeneratorError);
    expect(() => addHandlerService(tree, options)).toThrow(message);
    expect(tree.listChanges().filter((c) => c.path.startsWith('services/refunds') || c.path.startsWith('services/Refunds'))).toEqual([]);
  });

  it('refuses a name an existing project has', () => {
    const tree = workspace();
    addHandlerService(tree, { name: 'refunds' });
    expect(() => addHandlerService(tree, { name: 'refunds', directory: 'apps' })).toThrow(
      /a project named 'refunds' exists already \(services\/refunds\/project\.json\)/,
    );
  });

  it('wrote the committed fixture service test/fixtures/payouts exactly as it generates it now', async () => {
    const tree = workspace();
    await handlerServiceGenerator(tree, FixtureOptions);
    const committed = filesUnder(join(Root, Fixture)).map((f) => relative(Root, f));
    const generated = tree
      .listChanges()
      .map((c) => c.path)
      .filter((p) => p.startsWith(`${Fixture}/`));
    expect(committed.sort()).toEqual(generated.sort());
    // In the repo, `nx g` formats with the repo's prettier config (formatFiles); an in-memory tree has none to find.
    // (Prettier 3 loads its plugins by dynamic import, which jest's VM refuses: it runs as a process.)
    const format = (path: string, text: string) =>
      execFileSync(join(Root, 'node_modules/.bin/prettier'), ['--stdin-filepath', join(Root, path)], { input: text, encoding: 'utf8' });
    for (const f of generated) expect(readFileSync(join(Root, f), 'utf8')).toBe(format(f, tree.read(f, 'utf-8')!));
  });
});
