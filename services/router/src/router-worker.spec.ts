import type { JetStreamClient } from '@nats-io/jetstream';
import { decodeEnvelope, decodeIndex, encodeEnvelope, encodeIndexedEnvelope, Headers, type CloudEvent } from '@mesh/contracts';
import type { InputEnvelope, Logger } from '@mesh/runtime';
import { orderEvent } from '@mesh/testing';
import { DedupWindow } from './dedup-window';
import { RouteTable } from './route-table';
import { routerWorker, type RouterCounters } from './router-worker';

interface Published {
  subject: string;
  data: Uint8Array;
  msgID?: string;
  headers?: { get(k: string): string };
}

function fakeJs(published: Published[]): JetStreamClient {
  return {
    publish: async (subject: string, data: Uint8Array, opts?: { msgID?: string; headers?: { get(k: string): string } }) => {
      published.push({ subject, data, msgID: opts?.msgID, headers: opts?.headers });
      return { stream: 'x', seq: published.length, duplicate: false };
    },
  } as unknown as JetStreamClient;
}

function envelope(seq: number, events: CloudEvent[], data = encodeEnvelope(events)): InputEnvelope {
  return { seq, subject: 'mesh.ingest.3.order.created', timestampMs: 1_000 + seq, deliveryCount: 1, redriven: false, events, data };
}

/** An envelope with its index, as the stage runner hands it to a worker that reads the index; `reads` counts reads of its events. */
function indexed(seq: number, events: CloudEvent[], body?: Uint8Array) {
  const encoded = encodeIndexedEnvelope(events);
  const data = body ?? encoded.body;
  const index = decodeIndex(encoded.index, data.length);
  const reads = { count: 0 };
  const env: InputEnvelope = {
    seq,
    subject: 'mesh.ingest.3.order.created',
    timestampMs: 1_000 + seq,
    deliveryCount: 1,
    redriven: false,
    get events() {
      reads.count++;
      return decodeEnvelope(data, index);
    },
    data,
    index,
    indexHeader: encoded.index,
  };
  return { env, reads, indexHeader: encoded.index };
}

const SAMPLED = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

function worker(published: Published[], table: RouteTable) {
  const counters: RouterCounters = { routed: 0, duplicates: 0, dropped: 0, unroutable: 0 };
  const w = routerWorker({ js: fakeJs(published), partition: 3, table, dedup: new DedupWindow(60_000), counters, log: {} as Logger });
  return { w, counters };
}

describe('routerWorker', () => {
  it('forwards the bytes of an envelope whose events all go to a handler, on the subject of the service hosting it, and re-encodes one it thins out', async () => {
    const table = new RouteTable();
    table.setHandler('orders', ['order.created']);
    table.setHandler('audit', ['order.*'], 'audit-team');
    const published: Published[] = [];
    const { w, counters } = worker(published, table);
    const first = [orderEvent('k1', 1, 5), orderEvent('k2', 1, 7)];
    // Bytes as a client other than JSON.stringify might lay them out: forwarded as they are.
    const spaced = Buffer.from(JSON.stringify(first, null, 1));
    // The second envelope repeats k1-1: the router drops it and sends only the new event.
    const second = [orderEvent('k1', 1, 5), orderEvent('k3', 1, 2)];
    await w.handle([envelope(10, first, spaced), envelope(11, second)]);

    expect(published.map((p) => [p.subject, p.msgID])).toEqual([
      ['mesh.routed.audit-team.3.audit', 'router:10:audit'],
      ['mesh.routed.processor.3.orders', 'router:10:orders'],
      ['mesh.routed.audit-team.3.audit', 'router:11:audit'],
      ['mesh.routed.processor.3.orders', 'router:11:orders'],
    ]);
    expect(published[0].data).toBe(spaced);
    expect(published[1].data).toBe(spaced);
    expect(decodeEnvelope(published[2].data).map((e) => e.id)).toEqual([second[1].id]);
    expect(decodeEnvelope(published[3].data)).toEqual([second[1]]);
    expect(counters).toEqual({ routed: 6, duplicates: 1, dropped: 0, unroutable: 0 });
  });

  describe('with an index', () => {
    function ordersTable(): RouteTable {
      const table = new RouteTable();
      table.setHandler('orders', ['order.created']);
      table.setHandler('audit', ['order.*'], 'audit-team');
      return table;
    }

    it('forwards the bytes and the index of an envelope whose events all go to a handler, without reading its events', async () => {
      const published: Published[] = [];
      const { w, counters } = worker(published, ordersTable());
      const { env, reads, indexHeader } = indexed(10, [orderEvent('k1', 1, 5), orderEvent('k2', 1, 7)]);
      await w.handle([env]);
      expect(reads.count).toBe(0);
      expect(published.map((p) => [p.subject, p.data, p.headers?.get(Headers.index), p.headers?.get(Headers.count)])).toEqual([
        ['mesh.routed.audit-team.3.audit', env.data, indexHeader, '2'],
        ['mesh.routed.processor.3.orders', env.data, indexHeader, '2'],
      ]);
      expect(published[0].data).toBe(env.data);
      expect(counters).toEqual({ routed: 4, duplicates: 0, dropped: 0, unroutable: 0 });
    });

    it('drops duplicates by the index and cuts the rest from the bytes, with their index, without reading events', async () => {
      const published: Published[] = [];
      const { w, counters } = worker(published, ordersTable());
      const first = indexed(10, [orderEvent('k1', 1, 5)]);
      const second = [orderEvent('k1', 1, 5), orderEvent('k3', 1, 2), orderEvent('k4', 1, 3)];
      const again = indexed(11, second);
      await w.handle([first.env, again.env]);
      expect(first.reads.count + again.reads.count).toBe(0);
      const cut = published.filter((p) => p.msgID === 'router:11:orders');
      expect(cut).toHaveLength(1);
      // Byte for byte what encoding those events gives, and an index that describes them.
      expect(Buffer.from(cut[0].data).toString()).toBe(JSON.stringify(second.slice(1)));
      expect(decodeEnvelope(cut[0].data, decodeIndex(cut[0].headers!.get(Headers.index), cut[0].data.length))).toEqual(second.slice(1));
      expect(cut[0].headers!.get(Headers.count)).toBe('2');
      expect(counters.duplicates).toBe(1);
    });

    it('splits by weights and matches a where on source by the index alone', async () => {
      const table = new RouteTable();
      table.setHandler('orders', ['order.created']);
      table.setRule({
        name: 'canary',
        match: 'order.created',
        where: { source: orderEvent('k', 1, 1).source },
        priority: 1,
        to: [
          { handler: 'a', weight: 1 },
          { handler: 'b', weight: 1 },
        ],
        drop: false,
      });
      const published: Published[] = [];
      const { w } = worker(published, table);
      const events = Array.from({ length: 40 }, (_, i) => orderEvent(`k${i}`, 1, 1));
      const { env, reads } = indexed(10, events);
      await w.handle([env]);
      expect(reads.count).toBe(0);
      const ids = (handler: string) => published.filter((p) => p.subject.endsWith(`.${handler}`)).flatMap((p) => decodeEnvelope(p.data).map((e) => e.id));
      expect(ids('a').length).toBeGreaterThan(0);
      expect(ids('b').length).toBeGreaterThan(0);
      expect([...ids('a'), ...ids('b')].sort()).toEqual(events.map((e) => e.id).sort());
    });

    it('reads the events of an envelope when a rule looks at an attribute the index lacks, and routes by it', async () => {
      const table = new RouteTable();
      table.setHandler('orders', ['order.created']);
      table.setRule({ name: 'acme', match: 'order.*', where: { tenant: 'acme' }, priority: 1, to: [{ handler: 'acme-orders' }], drop: false });
      const published: Published[] = [];
      const { w } = worker(published, table);
      const acme = { ...orderEvent('k1', 1, 5), tenant: 'acme' };
      const other = orderEvent('k2', 1, 7);
      const { env, reads } = indexed(10, [acme, other]);
      await w.handle([env]);
      expect(reads.count).toBeGreaterThan(0);
      expect(published.map((p) => [p.subject, decodeEnvelope(p.data)])).toEqual([
        ['mesh.routed.processor.3.acme-orders', [acme]],
        ['mesh.routed.processor.3.orders', [other]],
      ]);
    });

    it('reads the events of an envelope holding an event whose trace is sampled', async () => {
      const published: Published[] = [];
      const { w } = worker(published, ordersTable());
      const { env, reads } = indexed(10, [orderEvent('k1', 1, 5), { ...orderEvent('k2', 1, 7), traceparent: SAMPLED }]);
      await w.handle([env]);
      expect(reads.count).toBeGreaterThan(0);
      // No tracer records here, so the event keeps its traceparent and the bytes go on unchanged.
      expect(published.map((p) => p.data)).toEqual([env.data, env.data]);
    });

    it('dead-letters an unroutable event with its own JSON', async () => {
      const published: Published[] = [];
      const { w, counters } = worker(published, ordersTable());
      const lost = { ...orderEvent('k2', 1, 7), type: 'refund.issued' };
      const { env } = indexed(10, [orderEvent('k1', 1, 5), lost]);
      await w.handle([env]);
      const letter = published.find((p) => p.subject === 'mesh.dlq.router.3')!;
      expect(decodeEnvelope(letter.data)).toEqual([lost]);
      expect(counters).toEqual({ routed: 2, duplicates: 0, dropped: 0, unroutable: 1 });
    });

    it('dead-letters whole an envelope whose body it must read and that differs from its index, and routes the others', async () => {
      const published: Published[] = [];
      const { w, counters } = worker(published, ordersTable());
      const events = [orderEvent('k1', 1, 5), { ...orderEvent('k2', 1, 7), type: 'refund.issued' }];
      // The same length, another id: only reading the body shows it.
      const lying = Buffer.from(JSON.stringify([events[0], { ...events[1], id: events[1].id.replace(/.$/, 'X') }]));
      const bad = indexed(10, events, lying);
      const good = indexed(11, [orderEvent('k3', 1, 1)]);
      await w.handle([bad.env, good.env]);
      const letter = published.find((p) => p.subject === 'mesh.dlq.router.3')!;
      expect(letter.data).toBe(lying);
      expect(letter.headers!.get(Headers.errorKind)).toBe('MalformedEnvelopeError');
      expect(letter.headers!.get(Headers.error)).toMatch(
        /^malformed envelope: index \(Mesh-Index header\) does not match the body: event 1 is .+ \(id differs\)$/,
      );
      expect(published.filter((p) => p.msgID?.startsWith('router:')).map((p) => p.msgID)).toEqual(['router:11:audit', 'router:11:orders']);
      expect(counters).toEqual({ routed: 2, duplicates: 0, dropped: 0, unroutable: 0 });
    });
  });
});
