/**
 * The built binary as an operator runs it: exit codes and one-line errors.
 * Needs `npm run build` first (the README's test command does it).
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { MeshVersion } from '@mesh/contracts';
import { provisionMesh } from '@mesh/messaging';
import { startNatsServer, type NatsServer } from '@mesh/testing';

const MainJs = join(__dirname, '..', 'dist', 'main.js');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run the binary with only PATH and `env`: a NATS_URL of the caller's shell must not leak in. */
function mesh(args: string[], env: Record<string, string> = {}, command: string[] = [process.execPath, MainJs]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(command[0], [...command.slice(1), ...args], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** A loopback port nothing listens on. */
function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

describe('the mesh binary', () => {
  let server: NatsServer;

  beforeAll(async () => {
    if (!existsSync(MainJs)) throw new Error(`${MainJs} is missing: run 'npm run build' first`);
    server = await startNatsServer();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('prints help and exits 0', async () => {
    const run = await mesh(['--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^usage: mesh <command> \[options\]/);
  });

  it("runs as the workspace package's bin (what `npx mesh` executes), and prints the mesh version", async () => {
    const pkg = JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')) as { bin: Record<string, string> };
    const bin = join(__dirname, '..', pkg.bin.mesh);
    const run = await mesh(['--version'], {}, [bin]);
    expect(run).toEqual({ code: 0, stdout: `mesh ${MeshVersion}\n`, stderr: '' });
    expect((await mesh(['--help'], {}, [bin])).stdout).toMatch(/^usage: mesh <command> \[options\]/);
  });

  it('exits 2 with the problem on one line for a usage error', async () => {
    const run = await mesh(['dlq', 'ls', '--stage', 'Routr', '--nats', server.url]);
    expect(run).toEqual({
      code: 2,
      stdout: '',
      stderr: "mesh: unknown stage 'Routr'; use router, processor, aggregator, ingest or the name of a handler service\n",
    });
  });

  it('exits 1 with one line when NATS cannot be reached', async () => {
    const url = `nats://127.0.0.1:${await closedPort()}`;
    const run = await mesh(['partitions', '--nats', url]);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(new RegExp(`^mesh: cannot reach NATS at ${url}: [^\\n]+\\n$`));
  });

  it('exits 1 naming the missing stream on a server without the mesh, and 0 once it is provisioned', async () => {
    const before = await mesh(['dlq', 'ls'], { NATS_URL: server.url });
    expect(before.code).toBe(1);
    expect(before.stderr).toBe(
      `mesh: stream MESH_DLQ not found at ${server.url}; the mesh is not provisioned there (every service provisions it when it starts)\n`,
    );

    const nc = await connect({ servers: server.url });
    try {
      await provisionMesh(nc, { partitions: 2 });
    } finally {
      await nc.close();
    }
    const after = await mesh(['dlq', 'ls', '--json'], { NATS_URL: server.url });
    expect(after.code).toBe(0);
    expect(JSON.parse(after.stdout)).toEqual({ deadLetters: [], matching: 0 });

    const partitions = await mesh(['partitions', '--stage', 'router', '--nats', server.url]);
    expect(partitions.code).toBe(0);
    expect(partitions.stdout).toContain('router-p01 (missing)');
  });

  it('exits 1 when a dead letter does not exist', async () => {
    const run = await mesh(['dlq', 'show', '12345', '--nats', server.url]);
    expect(run.code).toBe(1);
    expect(run.stderr).toBe("mesh: no dead letter with sequence 12345 in MESH_DLQ; list them with 'mesh dlq ls'\n");
  });
});
