import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { Buckets } from '@mesh/contracts';
import { provisionMesh } from '@mesh/messaging';
import { startNatsServer, type NatsServer } from '@mesh/testing';
import { commandContext } from './context';
import { CliError, UsageError } from './errors';
import { MemoryOutput } from './output';
import { routesList, routesRemove, routesSet } from './routes';

describe('mesh routes (real nats-server)', () => {
  let server: NatsServer;
  let nc: NatsConnection;

  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connect({ servers: server.url });
    await provisionMesh(nc, { partitions: 4 });
    await (await new Kvm(nc).open(Buckets.routes)).put('handler.orders', JSON.stringify({ types: ['order.created'] }));
  });
  afterAll(async () => {
    await nc?.close();
    await server?.stop();
  });

  const cli = async (json = false) => {
    const out = new MemoryOutput();
    return { ctx: await commandContext(nc, out, { json }), out };
  };
  const stored = async (key: string) => {
    const e = await (await new Kvm(nc).open(Buckets.routes)).get(key);
    return e?.operation === 'PUT' ? e.string() : undefined;
  };

  it('stores a rule the router accepts, lists it beside the handlers, and removes it', async () => {
    const rule = {
      match: 'order.*',
      where: { source: 'shop' },
      to: [
        { handler: 'orders', weight: 90 },
        { handler: 'orders-v2', weight: 10 },
      ],
    };
    const set = await cli();
    await routesSet(set.ctx, { name: 'canary', rule: JSON.stringify(rule) });
    expect(set.out.stdout).toEqual([expect.stringMatching(/^stored rule 'canary' \(mesh_routes rule\.canary, revision \d+\)/)]);
    expect(JSON.parse((await stored('rule.canary'))!)).toEqual(rule);

    const ls = await cli(true);
    await routesList(ls.ctx);
    expect(ls.out.json<{ routes: unknown[] }>().routes).toEqual([
      { kind: 'handler', name: 'orders', value: { types: ['order.created'] }, problems: [] },
      { kind: 'rule', name: 'canary', value: rule, problems: [] },
    ]);

    const rm = await cli();
    await routesRemove(rm.ctx, 'canary');
    expect(rm.out.stdout).toEqual(["removed rule 'canary'; the routers stop applying it now"]);
    expect(await stored('rule.canary')).toBeUndefined();
    await expect(routesRemove(rm.ctx, 'canary')).rejects.toThrow(new CliError("no rule 'canary' in mesh_routes (mesh routes ls lists them)"));
  });

  it('refuses a rule the router would ignore, naming every problem, and stores nothing', async () => {
    const { ctx } = await cli();
    await expect(routesSet(ctx, { name: 'broken', rule: '{"match":"order..x","to":[{"handler":"a","weight":1},"b"]}' })).rejects.toThrow(UsageError);
    await expect(routesSet(ctx, { name: 'broken', rule: '{"match":"order..x","to":[{"handler":"a","weight":1},"b"]}' })).rejects.toThrow(
      /^rule 'broken' is refused and nothing was stored: match .*; give every entry of to a weight, or none/,
    );
    await expect(routesSet(ctx, { name: 'broken', rule: 'not json' })).rejects.toThrow(/^the rule is not JSON/);
    expect(await stored('rule.broken')).toBeUndefined();
  });

  it('shows why the router ignores a rule written by hand', async () => {
    await (await new Kvm(nc).open(Buckets.routes)).put('rule.by-hand', JSON.stringify({ match: 'x.>' }));
    const { ctx, out } = await cli();
    await routesList(ctx);
    expect(out.stdout.find((l) => l.includes('by-hand'))).toMatch(/rule\s+by-hand\s+ignored: to must list handler names/);
  });
});
