import type { CloudEvent } from '@mesh/contracts';
import { parseRule, RouteTable, type RouteRule } from './route-table';

function event(type: string, extra: Partial<CloudEvent> = {}): CloudEvent {
  return { specversion: '1.0', id: 'e-1', source: 'shop', type, ...extra };
}

function rule(name: string, value: unknown): RouteRule {
  const { rule: parsed, problems } = parseRule(name, value);
  if (!parsed) throw new Error(`rule ${name} rejected: ${problems.join('; ')}`);
  return parsed;
}

function tableWith(handlers: Record<string, string[]>, rules: RouteRule[] = []): RouteTable {
  const t = new RouteTable();
  for (const [name, types] of Object.entries(handlers)) t.setHandler(name, types);
  for (const r of rules) t.setRule(r);
  return t;
}

/** How many of `n` distinct events each handler gets. */
function split(table: RouteTable, n: number): Record<string, number> {
  const counts: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const d = table.route(event('order.created', { id: `order-${i}` }));
    if (d.kind !== 'handlers' || d.handlers.length !== 1) throw new Error(`expected one handler, got ${JSON.stringify(d)}`);
    counts[d.handlers[0]] = (counts[d.handlers[0]] ?? 0) + 1;
  }
  return counts;
}

describe('RouteTable', () => {
  describe('default routes from handler declarations', () => {
    it('sends an event to every handler that declares its type, sorted by name', () => {
      const t = tableWith({ zeta: ['order.*'], audit: ['>'], alpha: ['order.created'], billing: ['payment.*'] });
      expect(t.route(event('order.created'))).toEqual({ kind: 'handlers', handlers: ['alpha', 'audit', 'zeta'] });
    });

    it('matches multi-token types with the > wildcard', () => {
      const t = tableWith({ lines: ['order.>'] });
      expect(t.route(event('order.line.added'))).toEqual({ kind: 'handlers', handlers: ['lines'] });
    });

    it('calls an event unroutable when no handler declares its type and no rule matches', () => {
      const t = tableWith({ billing: ['payment.*'] }, [rule('r', { match: 'payment.*', to: ['billing'] })]);
      expect(t.route(event('order.created'))).toEqual({ kind: 'unroutable' });
    });

    it('calls everything unroutable when the table is empty', () => {
      expect(new RouteTable().route(event('order.created'))).toEqual({ kind: 'unroutable' });
    });

    it('forgets a removed handler', () => {
      const t = tableWith({ orders: ['order.*'] });
      t.removeHandler('orders');
      expect(t.handlerCount).toBe(0);
      expect(t.route(event('order.created'))).toEqual({ kind: 'unroutable' });
    });
  });

  describe('rules', () => {
    it('take precedence over the default routes', () => {
      const t = tableWith({ orders: ['order.*'], audit: ['>'] }, [rule('to-v2', { match: 'order.created', to: ['orders-v2'] })]);
      expect(t.route(event('order.created'))).toEqual({ kind: 'handlers', handlers: ['orders-v2'], rule: 'to-v2' });
      expect(t.route(event('order.cancelled'))).toEqual({ kind: 'handlers', handlers: ['audit', 'orders'] });
    });

    it('fan out to every listed handler', () => {
      const t = tableWith({}, [rule('fan', { match: 'order.*', to: ['a', 'b', 'c'] })]);
      expect(t.route(event('order.created'))).toEqual({ kind: 'handlers', handlers: ['a', 'b', 'c'], rule: 'fan' });
    });

    it('are tried by priority, highest first, whatever the order they were added in', () => {
      const low = rule('low', { match: 'order.*', priority: 1, to: ['low'] });
      const high = rule('high', { match: 'order.*', priority: 10, to: ['high'] });
      expect(tableWith({}, [low, high]).route(event('order.created'))).toMatchObject({ handlers: ['high'], rule: 'high' });
      expect(tableWith({}, [high, low]).route(event('order.created'))).toMatchObject({ handlers: ['high'], rule: 'high' });
    });

    it('of equal priority are tried by name', () => {
      const b = rule('b-rule', { match: 'order.*', to: ['b'] });
      const a = rule('a-rule', { match: 'order.*', to: ['a'] });
      expect(tableWith({}, [b, a]).route(event('order.created'))).toMatchObject({ rule: 'a-rule' });
    });

    it('fall through to a lower-priority rule when a higher one does not match the type', () => {
      const t = tableWith({}, [
        rule('payments', { match: 'payment.*', priority: 10, to: ['pay'] }),
        rule('orders', { match: 'order.*', priority: 1, to: ['ord'] }),
      ]);
      expect(t.route(event('order.created'))).toMatchObject({ rule: 'orders', handlers: ['ord'] });
    });

    it('apply only to events whose attributes equal every value of `where`', () => {
      const t = tableWith({ orders: ['order.*'] }, [
        rule('eu-shop', { match: 'order.*', where: { source: 'shop', region: 'eu' }, priority: 5, to: ['orders-eu'] }),
      ]);
      expect(t.route(event('order.created', { region: 'eu' }))).toMatchObject({ rule: 'eu-shop', handlers: ['orders-eu'] });
      expect(t.route(event('order.created', { region: 'us' }))).toEqual({ kind: 'handlers', handlers: ['orders'] });
      expect(t.route(event('order.created', { region: 'eu', source: 'other' }))).toEqual({ kind: 'handlers', handlers: ['orders'] });
      expect(t.route(event('order.created'))).toEqual({ kind: 'handlers', handlers: ['orders'] });
    });

    it('compare `where` values strictly, so the number 1 does not match the string "1"', () => {
      const t = tableWith({}, [rule('r', { match: '>', where: { tier: 1 }, to: ['gold'] })]);
      expect(t.route(event('order.created', { tier: 1 }))).toMatchObject({ handlers: ['gold'] });
      expect(t.route(event('order.created', { tier: '1' }))).toEqual({ kind: 'unroutable' });
    });

    it('drop matching events, even ones a handler declares', () => {
      const t = tableWith({ orders: ['order.*'] }, [rule('no-tests', { match: 'order.*', where: { source: 'test' }, drop: true })]);
      expect(t.route(event('order.created', { source: 'test' }))).toEqual({ kind: 'drop', rule: 'no-tests' });
      expect(t.route(event('order.created'))).toEqual({ kind: 'handlers', handlers: ['orders'] });
    });

    it('are replaced by a rule of the same name and forgotten when removed', () => {
      const t = tableWith({ orders: ['order.*'] }, [rule('r', { match: 'order.*', to: ['one'] })]);
      t.setRule(rule('r', { match: 'order.*', to: ['two'] }));
      expect(t.route(event('order.created'))).toMatchObject({ handlers: ['two'], rule: 'r' });
      t.removeRule('r');
      expect(t.route(event('order.created'))).toEqual({ kind: 'handlers', handlers: ['orders'] });
    });
  });

  describe('weighted targets', () => {
    const canary = rule('canary', {
      match: 'order.*',
      to: [
        { handler: 'orders', weight: 90 },
        { handler: 'orders-v2', weight: 10 },
      ],
    });

    it('send each event to exactly one handler, the same one every time', () => {
      const t = tableWith({}, [canary]);
      for (let i = 0; i < 50; i++) {
        const e = event('order.created', { id: `order-${i}` });
        const first = t.route(e);
        expect(first).toMatchObject({ kind: 'handlers', rule: 'canary' });
        expect(first.kind === 'handlers' && first.handlers).toHaveLength(1);
        expect(t.route({ ...e })).toEqual(first);
        expect(tableWith({}, [canary]).route({ ...e })).toEqual(first);
      }
    });

    it('split many events roughly as the weights say (90/10)', () => {
      const counts = split(tableWith({}, [canary]), 10_000);
      expect(counts['orders'] / 10_000).toBeGreaterThan(0.85);
      expect(counts['orders'] / 10_000).toBeLessThan(0.95);
      expect(counts['orders-v2'] / 10_000).toBeGreaterThan(0.05);
      expect(counts['orders-v2'] / 10_000).toBeLessThan(0.15);
    });

    it('split sequential ids as the weights say from the first hundred events (a canary gets its share at once)', () => {
      const t = tableWith({}, [
        rule('seq', {
          match: 'order.*',
          to: [
            { handler: 'stable', weight: 3 },
            { handler: 'canary', weight: 1 },
          ],
        }),
      ]);
      const counts: Record<string, number> = {};
      for (let i = 0; i < 100; i++) {
        const d = t.route(event('order.created', { id: `canary-${i}` }));
        if (d.kind === 'handlers') for (const h of d.handlers) counts[h] = (counts[h] ?? 0) + 1;
      }
      // 25 expected; FNV-1a alone gave 0 here.
      expect(counts['canary']).toBeGreaterThanOrEqual(15);
      expect(counts['canary']).toBeLessThanOrEqual(35);
    });

    it('never pick a handler of weight 0', () => {
      const t = tableWith({}, [
        rule('off', {
          match: 'order.*',
          to: [
            { handler: 'off', weight: 0 },
            { handler: 'on', weight: 3 },
          ],
        }),
      ]);
      expect(split(t, 500)).toEqual({ on: 500 });
    });

    it('split by fractional weights as well (0.9/0.1)', () => {
      const t = tableWith({}, [
        rule('fractional', {
          match: 'order.*',
          to: [
            { handler: 'orders', weight: 0.9 },
            { handler: 'orders-v2', weight: 0.1 },
          ],
        }),
      ]);
      const counts = split(t, 10_000);
      expect((counts['orders-v2'] ?? 0) / 10_000).toBeGreaterThan(0.05);
      expect((counts['orders-v2'] ?? 0) / 10_000).toBeLessThan(0.15);
    });
  });
});

describe('parseRule', () => {
  it('reads a complete rule', () => {
    expect(
      parseRule('canary', {
        match: 'order.*',
        where: { source: 'shop' },
        priority: 10,
        to: [
          { handler: 'orders', weight: 90 },
          { handler: 'orders-v2', weight: 10 },
        ],
      }),
    ).toEqual({
      problems: [],
      rule: {
        name: 'canary',
        match: 'order.*',
        where: { source: 'shop' },
        priority: 10,
        to: [
          { handler: 'orders', weight: 90 },
          { handler: 'orders-v2', weight: 10 },
        ],
        drop: false,
      },
    });
  });

  it('refuses a to list that mixes weighted and unweighted handlers', () => {
    const { rule, problems } = parseRule('mixed', { match: 'order.*', to: ['audit', { handler: 'orders-v2', weight: 10 }] });
    expect(rule).toBeUndefined();
    expect(problems).toEqual(['give every entry of to a weight, or none (to fan out to all)']);
  });

  it('refuses weights that are all zero, which would route nowhere', () => {
    const { rule, problems } = parseRule('zero', {
      match: 'order.*',
      to: [
        { handler: 'a', weight: 0 },
        { handler: 'b', weight: 0 },
      ],
    });
    expect(rule).toBeUndefined();
    expect(problems).toEqual(['at least one weight must be above 0']);
  });

  it('gives priority 0 when none is set and needs no `to` for a drop rule', () => {
    expect(parseRule('d', { match: 'test.>', drop: true })).toEqual({
      problems: [],
      rule: { name: 'd', match: 'test.>', where: undefined, priority: 0, to: [], drop: true },
    });
  });

  it.each<[string, unknown, RegExp]>([
    ['a value that is not an object', ['order.*'], /JSON object/],
    ['a missing match', { to: ['orders'] }, /^match must be an event type pattern/],
    ['a match with a bad token', { match: 'order.cre ated', to: ['orders'] }, /^match token 'cre ated'/],
    ["a match with '>' before the end", { match: 'order.>.x', to: ['orders'] }, /^match '>' may only be the last token/],
    ['an empty match', { match: '', to: ['orders'] }, /^match must be a non-empty string/],
    ['a missing to', { match: 'order.*' }, /^to must list handler names/],
    ['an empty to', { match: 'order.*', to: [] }, /^to must list handler names/],
    ['a negative weight', { match: 'order.*', to: [{ handler: 'orders', weight: -1 }] }, /^weight of orders must be a number >= 0/],
    ['a weight that is not a number', { match: 'order.*', to: [{ handler: 'orders', weight: '5' }] }, /^weight of orders/],
    ['a target that is neither a name nor {handler}', { match: 'order.*', to: [42] }, /^each entry of to/],
    ['a where that is not an object', { match: 'order.*', where: 'shop', to: ['orders'] }, /^where must be an object/],
    ['a priority that is not a number', { match: 'order.*', priority: 'high', to: ['orders'] }, /^priority must be a number/],
  ])('rejects %s with a problem saying what is wrong', (_what, value, problem) => {
    const parsed = parseRule('r', value);
    expect(parsed.rule).toBeUndefined();
    expect(parsed.problems).toEqual([expect.stringMatching(problem)]);
  });

  it('reports every problem of a rule at once', () => {
    expect(parseRule('r', { match: 'a b', priority: 'x', to: [] }).problems).toHaveLength(3);
  });

  describe('decisions remembered by type', () => {
    it('routes by the table as it is now after handlers and rules change', () => {
      const t = tableWith({ orders: ['order.*'] });
      expect(t.route(event('order.created'))).toEqual({ kind: 'handlers', handlers: ['orders'] });
      t.setHandler('audit', ['>']);
      expect(t.route(event('order.created'))).toEqual({ kind: 'handlers', handlers: ['audit', 'orders'] });
      t.setRule(rule('drop-orders', { match: 'order.created', drop: true }));
      expect(t.route(event('order.created'))).toEqual({ kind: 'drop', rule: 'drop-orders' });
      t.removeRule('drop-orders');
      t.removeHandler('audit');
      expect(t.route(event('order.created'))).toEqual({ kind: 'handlers', handlers: ['orders'] });
    });

    it('decides per event for a type that a rule with attribute predicates matches', () => {
      const t = tableWith({ orders: ['order.*'] }, [rule('vip', { match: 'order.*', where: { tier: 'vip' }, to: ['vip-orders'] })]);
      for (let i = 0; i < 3; i++) {
        expect(t.route(event('order.created'))).toEqual({ kind: 'handlers', handlers: ['orders'] });
        expect(t.route(event('order.created', { tier: 'vip' }))).toEqual({ kind: 'handlers', handlers: ['vip-orders'], rule: 'vip' });
      }
      // Another type, which that rule does not match, is decided by its type.
      expect(t.route(event('payment.received'))).toEqual({ kind: 'unroutable' });
    });

    it('picks a weighted target per event, not once per type', () => {
      const t = tableWith({}, [
        rule('canary', {
          match: 'order.created',
          to: [
            { handler: 'v1', weight: 50 },
            { handler: 'v2', weight: 50 },
          ],
        }),
      ]);
      const counts = split(t, 400);
      expect(counts.v1).toBeGreaterThan(100);
      expect(counts.v2).toBeGreaterThan(100);
    });
  });

  describe('routing by an envelope index', () => {
    it('needs the event only for a type a rule with a where on another attribute than type, source and id matches', () => {
      const t = tableWith({ orders: ['order.*'] }, [
        rule('by-source', { match: 'order.created', where: { source: 'shop', id: 'e-1' }, to: ['shop-orders'] }),
        rule('by-tier', { match: 'order.paid', where: { tier: 'vip' }, to: ['vip-orders'] }),
        rule('by-key', { match: 'order.shipped', where: { partitionkey: 'k' }, to: ['k-orders'] }),
      ]);
      expect(['order.created', 'order.paid', 'order.shipped', 'order.cancelled'].map((type) => t.needsEvent(type))).toEqual([false, true, true, false]);
    });

    it('forgets what it needed when rules change', () => {
      const t = tableWith({ orders: ['order.*'] });
      expect(t.needsEvent('order.created')).toBe(false);
      t.setRule(rule('by-tier', { match: 'order.*', where: { tier: 'vip' }, to: ['vip-orders'] }));
      expect(t.needsEvent('order.created')).toBe(true);
      t.removeRule('by-tier');
      expect(t.needsEvent('order.created')).toBe(false);
    });

    it('routes an index entry as it routes the event it describes', () => {
      const t = tableWith({ orders: ['order.*'] }, [rule('by-source', { match: 'order.created', where: { source: 'till' }, to: ['till-orders'] })]);
      const entry = (source: string) => ({ type: 'order.created', key: 'k', source, id: 'e-1', bytes: 99, sampled: false });
      for (const source of ['till', 'shop']) expect(t.route(entry(source))).toEqual(t.route(event('order.created', { source })));
    });
  });
});
