/**
 * Several instances of a service on one host through Nx, as the README
 * says: Nx shares a running continuous task between its processes, so a
 * second `nx serve processor` would only attach to the first. Each service's
 * `serve` target has configurations 2, 3 and 4 (their own task ids, HTTP on
 * a free port): `nx serve processor -c 2` starts a second instance, and the
 * two share the partitions.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { eventually, RepoRoot, startNatsServer, type NatsServer } from '@mesh/testing';

interface Served {
  child: ChildProcess;
  output(): string;
}

function nxServe(args: string[], env: Record<string, string>): Served {
  const child = spawn(process.execPath, [join(RepoRoot, 'node_modules', 'nx', 'dist', 'bin', 'nx.js'), 'serve', ...args], {
    cwd: RepoRoot,
    env: { PATH: process.env.PATH ?? '', NX_DAEMON: 'false', NX_NO_CLOUD: 'true', NX_TUI: 'false', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    // Nx runs the service as its child: stop the whole group.
    detached: true,
  });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  return { child, output: () => out };
}

function stopGroup(s: Served | undefined): Promise<void> {
  if (!s?.child.pid || s.child.exitCode !== null || s.child.signalCode !== null) return Promise.resolve();
  const exited = new Promise<void>((r) => s.child.once('exit', () => r()));
  try {
    process.kill(-s.child.pid, 'SIGTERM');
  } catch {
    return Promise.resolve();
  }
  return exited;
}

describe('npx nx serve <service> -c 2 on one host', () => {
  let server: NatsServer;
  const served: Served[] = [];

  beforeAll(async () => {
    server = await startNatsServer();
  });
  afterAll(async () => {
    await Promise.all(served.map(stopGroup));
    await server.stop();
  });

  it('starts a second processor instance instead of attaching to the first, and the two share the partitions', async () => {
    const env = { NATS_URL: server.url, HTTP_PORT: '0', HTTP_HOST: '127.0.0.1' };
    const first = nxServe(['processor'], env);
    served.push(first);
    const started = (s: Served) => /"msg":"started"/.test(s.output());
    expect(await eventually(async () => started(first), 90_000, 200)).toBe(true);

    const second = nxServe(['processor', '-c', '2'], { NATS_URL: server.url, HTTP_HOST: '127.0.0.1' });
    served.push(second);
    expect(await eventually(async () => started(second) || /Waiting for .* in another nx process/.test(second.output()), 90_000, 200)).toBe(true);
    expect(second.output()).not.toMatch(/in another nx process/);

    const instanceOf = (s: Served) => /"service":"processor","instance":"([^"]+)"/.exec(s.output())?.[1];
    const portOf = (s: Served) => Number(/"msg":"http listening","port":(\d+)/.exec(s.output())?.[1]);
    expect(instanceOf(first)).not.toBe(instanceOf(second));
    expect(portOf(first)).not.toBe(portOf(second));

    // Both are members, and each consumes some of the 16 partitions.
    const consuming = async (s: Served) =>
      ((await (await fetch(`http://127.0.0.1:${portOf(s)}/v1/partitions`)).json()) as { consuming: number[] }).consuming.length;
    const shared = await eventually(
      async () => {
        const [a, b] = [await consuming(first), await consuming(second)];
        return a > 0 && b > 0 && a + b === 16;
      },
      30_000,
      250,
    );
    expect({ shared, first: await consuming(first), second: await consuming(second) }).toEqual({
      shared: true,
      first: expect.any(Number),
      second: expect.any(Number),
    });
  }, 200_000);
});
