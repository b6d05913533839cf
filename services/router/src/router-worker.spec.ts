import type { JetStreamClient } from '@nats-io/jetstream';
import { decodeEnvelope, encodeEnvelope, type CloudEvent } from '@mesh/contracts';
import type { InputEnvelope, Logger } from '@mesh/runtime';
import { orderEvent } from '@mesh/testing';
import { DedupWindow } from './dedup-window';
import { RouteTable } from './route-table';
import { routerWorker, type RouterCounters } from './router-worker';

interface Published {
  subject: string;
  data: Uint8Array;
  msgID?: string;
}

function fakeJs(published: Published[]): JetStreamClient {
  return {
    publish: async (subject: string, data: Uint8Array, opts?: { msgID?: string }) => {
      published.push({ subject, data, msgID: opts?.msgID });
      return { stream: 'x', seq: published.length, duplicate: false };
    },
  } as unknown as JetStreamClient;
}

function envelope(seq: number, events: CloudEvent[], data = encodeEnvelope(events)): InputEnvelope {
  return { seq, subject: 'mesh.ingest.3.order.created', timestampMs: 1_000 + seq, deliveryCount: 1, redriven: false, events, data };
}

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
});
