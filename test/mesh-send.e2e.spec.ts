/**
 * `mesh send`: events to ingest over NATS (mesh.in.<type>) from the CLI,
 * with ingest's answer and an exit code that says whether they were stored.
 */
import { Streams } from '@mesh/contracts';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { startNatsServer, startService, type NatsServer, type ServiceProcess } from '@mesh/testing';
import { runCli } from '../tools/mesh/src/cli';
import { MemoryOutput } from '../tools/mesh/src/output';

describe('mesh send <type> <event-json>', () => {
  let server: NatsServer;
  let ingest: ServiceProcess | undefined;

  beforeAll(async () => {
    server = await startNatsServer();
    ingest = await startService('ingest', { NATS_URL: server.url });
  });
  afterAll(async () => {
    await ingest?.stop();
    await server.stop();
  });

  const mesh = async (...args: string[]) => {
    const out = new MemoryOutput();
    const code = await runCli([...args, '--nats', server.url], {}, out);
    return { code, out };
  };
  const stored = async () => {
    const nc = await connect({ servers: server.url });
    try {
      return (await (await jetstreamManager(nc)).streams.info(Streams.ingest)).state.messages;
    } finally {
      await nc.close();
    }
  };

  it('stores an event, taking its type from the subject, and prints the 202', async () => {
    const { code, out } = await mesh('send', 'order.created', '{"specversion":"1.0","id":"cli-1","source":"cli","partitionkey":"k","data":{"amount":3}}');
    expect({ code, stdout: out.stdout }).toEqual({ code: 0, stdout: [expect.stringMatching(/^202 \{"status":202,"accepted":1,"ids":\["cli-1"\]\}$/)] });
    expect(await stored()).toBe(1);
  });

  it("exits 1 with ingest's answer for an invalid event, and stores nothing", async () => {
    const before = await stored();
    const { code, out } = await mesh('send', 'order.created', '{"specversion":"1.0","source":"cli"}');
    expect(code).toBe(1);
    expect(out.stderr).toEqual([expect.stringMatching(/^mesh: ingest refused the events \(400\): .*"attribute":"id"/)]);
    expect(await stored()).toBe(before);
  });

  it('says so when no ingest instance answers', async () => {
    await ingest!.stop();
    ingest = undefined;
    const { code, out } = await mesh('send', 'order.created', '{"specversion":"1.0","id":"cli-2","source":"cli"}');
    expect({ code, stderr: out.stderr }).toEqual({
      code: 1,
      stderr: [expect.stringMatching(/^mesh: no ingest instance answers on mesh\.in\.order\.created at /)],
    });
  });
});
