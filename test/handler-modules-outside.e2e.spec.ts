/**
 * A handler file mounted outside the application (laid out as a ConfigMap
 * volume at /etc/mesh/handlers/ is: symlinks into a timestamped directory)
 * that does `require('@mesh/runtime')`:
 * the processor loads it from MESH_HANDLER_MODULES although Node could not
 * resolve that package from the file's own directory, gives it the very
 * module the processor itself uses (one file in the require cache, so one
 * instance), and its events go end to end: ingest, router, the handler (a
 * RetryableError of the runtime on the first attempt, retried), aggregator.
 * Other packages of the application (rxjs) resolve from it as well.
 */
import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  eventually,
  postEvents,
  RepoRoot,
  startMesh,
  startNatsServer,
  stopAll,
  totalsFor,
  type NatsServer,
  type ServiceName,
  type ServiceProcess,
} from '@mesh/testing';
import type { CloudEvent } from '@mesh/contracts';

const HANDLER = `'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { defineHandler, fields, RetryableError } = require('@mesh/runtime');
// A package of the application that is not @mesh/*: found from the processor too.
const { firstValueFrom, of } = require('rxjs');

module.exports = defineHandler({
  name: 'refunds',
  types: ['refund.requested'],
  schema: fields({ amount: 'number' }),
  retry: { maxAttempts: 3, initialDelayMs: 100, multiplier: 1, jitter: 0, maxDelayMs: 1000 },
  async handle(event, ctx) {
    fs.appendFileSync(path.join(__dirname, 'calls.ndjson'), JSON.stringify({ id: event.id, attempt: ctx.attempt, runtime: require.resolve('@mesh/runtime'), rxjs: require.resolve('rxjs') }) + '\\n');
    if (ctx.attempt === 1) throw new RetryableError('first attempt of ' + event.id + ' is put off');
    return { type: 'refund.approved', data: { amount: await firstValueFrom(of(event.data.amount)) } };
  },
});
`;

interface Call {
  id: string;
  attempt: number;
  runtime: string;
  rxjs: string;
}

function refund(id: string, key: string, amount: number): CloudEvent {
  return { specversion: '1.0', id, source: 'test://handler-modules', type: 'refund.requested', partitionkey: key, data: { amount } };
}

describe('a handler module outside the application that requires @mesh/runtime', () => {
  let server: NatsServer;
  let dir: string;
  /** Where the handler's files really are (its __dirname). */
  let files: string;
  let mesh: Record<ServiceName, ServiceProcess> | undefined;

  beforeAll(async () => {
    // Laid out as Kubernetes mounts a ConfigMap: refunds.js -> ..data/refunds.js, ..data -> ..<timestamp>/.
    dir = mkdtempSync(join(tmpdir(), 'mesh-mounted-handlers-'));
    mkdirSync(join(dir, '..2026_01_01_00_00_00.1'));
    writeFileSync(join(dir, '..2026_01_01_00_00_00.1', 'refunds.js'), HANDLER);
    symlinkSync('..2026_01_01_00_00_00.1', join(dir, '..data'));
    symlinkSync(join('..data', 'refunds.js'), join(dir, 'refunds.js'));
    files = realpathSync(join(dir, '..data'));
    appendFileSync(join(files, 'calls.ndjson'), '');
    server = await startNatsServer();
  }, 30_000);

  afterAll(async () => {
    await stopAll(Object.values(mesh ?? {}));
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lies where Node alone cannot resolve @mesh/runtime (outside the repository and its node_modules)', () => {
    expect(realpathSync(dir).startsWith(realpathSync(RepoRoot))).toBe(false);
    // Plain Node, as the processor required it before: the file cannot load.
    const plain = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(join(dir, 'refunds.js'))})`], { cwd: dir, encoding: 'utf8' });
    expect(plain.status).not.toBe(0);
    expect(plain.stderr).toMatch(/Cannot find module '@mesh\/runtime'/);
  });

  it('is loaded by the processor and processes events end to end, retried by the runtime it shares with the processor', async () => {
    mesh = await startMesh(server.url, { MESH_HANDLER_MODULES: join(dir, 'refunds.js') });
    const events = [refund('refund-1', 'cust-a', 10), refund('refund-2', 'cust-a', 20), refund('refund-3', 'cust-b', 5)];
    await postEvents(mesh.ingest.url, events, 'batch');

    const want = { 'cust-a': { count: 2, sum: 30 }, 'cust-b': { count: 1, sum: 5 } };
    await eventually(async () => JSON.stringify(await totalsFor(mesh!.aggregator.url, Object.keys(want))) === JSON.stringify(want), 30_000);
    expect(await totalsFor(mesh.aggregator.url, Object.keys(want))).toEqual(want);

    const calls = readFileSync(join(files, 'calls.ndjson'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Call);
    // Each event: attempt 1 threw the runtime's RetryableError, which the processor recognised and retried.
    for (const e of events)
      expect(
        calls
          .filter((c) => c.id === e.id)
          .map((c) => c.attempt)
          .sort(),
      ).toEqual([1, 2]);
    // The module file the processor loads as its own @mesh/runtime, so one instance.
    const processorsRuntime = realpathSync(require.resolve('@mesh/runtime', { paths: [join(RepoRoot, 'services', 'processor', 'dist')] }));
    for (const c of calls) expect(c.runtime).toBe(processorsRuntime);
    for (const c of calls) expect(c.rxjs.startsWith(join(realpathSync(RepoRoot), 'node_modules', 'rxjs') + '/')).toBe(true);
  }, 90_000);
});
