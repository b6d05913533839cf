/**
 * rebuildDedup against a real nats-server: what a router that takes a
 * partition remembers of it, read back from MESH_INGEST. It must remember
 * the events of that partition stored up to the consumer's ack floor and
 * within the duplicate window before it, and nothing else: not those after
 * the floor (they are delivered again and fill the window as they go), not
 * other partitions', not redriven ones, not those older than the window.
 */
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { encodeEnvelope, encodeIndexedEnvelope, Headers, Streams, Subjects, type CloudEvent } from '@mesh/contracts';
import { provisionMesh } from '@mesh/messaging';
import { startNatsServer, type NatsServer } from '@mesh/testing';
import { headers as natsHeaders } from '@nats-io/nats-core';
import { DedupWindow } from './dedup-window';
import { rebuildDedup } from './rebuild-dedup';

const WINDOW_MS = 60_000;

const ev = (id: string, source = 'test://shop'): CloudEvent => ({ specversion: '1.0', id, source, type: 'order.created' });

describe('rebuildDedup against a real nats-server', () => {
  let server: NatsServer;
  let nc: NatsConnection;
  let js: JetStreamClient;
  let jsm: JetStreamManager;

  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connect({ servers: server.url });
    await provisionMesh(nc, { partitions: 16 });
    js = jetstream(nc);
    jsm = await jetstreamManager(nc);
  });
  afterAll(async () => {
    await nc?.close();
    await server?.stop();
  });

  /** Store one envelope on partition `p`; resolves to its stream sequence. */
  const store = async (p: number, events: CloudEvent[], extra?: Record<string, string>): Promise<number> => {
    const h = natsHeaders();
    for (const [k, v] of Object.entries(extra ?? {})) h.set(k, v);
    const ack = await js.publish(Subjects.ingest(p, 'order.created'), encodeEnvelope(events), { headers: h });
    return ack.seq;
  };
  /** Whether the window takes `e` for a duplicate at `atMs` (default now); records it otherwise. */
  const remembers = (w: DedupWindow, e: CloudEvent, atMs = Date.now()) => w.seen(DedupWindow.keyOf(e.source, e.id), atMs);
  const indexHeaders = (index: string) => {
    const h = natsHeaders();
    h.set(Headers.index, index);
    return h;
  };
  const consumerCount = async () => (await jsm.streams.info(Streams.ingest)).state.consumer_count;

  it('remembers nothing when nothing of the partition was acked (floor 0), and reads nothing', async () => {
    await store(0, [ev('p0-a')]);
    const { window, scanned } = await rebuildDedup(js, jsm, 0, WINDOW_MS, 0);
    expect(scanned).toBe(0);
    expect(window.size).toBe(0);
  });

  it('remembers every event of the partition up to the ack floor, and none after it or of other partitions', async () => {
    const before = [ev('p1-a'), ev('p1-b'), ev('p1-c')];
    await store(1, before.slice(0, 2));
    await store(2, [ev('p2-x')]); // another partition, interleaved in the stream
    const floor = await store(1, [before[2], ev('p1-a', 'test://other')]);
    const after = [ev('p1-d'), ev('p1-e')];
    await store(1, after);
    await store(3, [ev('p3-y')]);

    const { window, scanned } = await rebuildDedup(js, jsm, 1, WINDOW_MS, floor);
    expect(scanned).toBe(2); // the two envelopes of partition 1 up to the floor
    expect(window.size).toBe(4);
    for (const e of [...before, ev('p1-a', 'test://other')]) expect(remembers(window, e)).toBe(true);
    for (const e of [...after, ev('p2-x'), ev('p3-y')]) expect(remembers(window, e)).toBe(false);
    // Its scanning consumer is gone: nothing is left behind on MESH_INGEST.
    expect(await consumerCount()).toBe(0);
  });

  it('does not remember redriven events, as the live router does not, and skips an envelope that is not one', async () => {
    const plain = ev('p4-plain');
    const redriven = ev('p4-redriven');
    await store(4, [plain]);
    await store(4, [redriven], { [Headers.redrive]: '7' });
    await js.publish(Subjects.ingest(4, 'order.created'), Buffer.from('not an envelope'));
    const last = ev('p4-last');
    const floor = await store(4, [last]);

    const { window, scanned } = await rebuildDedup(js, jsm, 4, WINDOW_MS, floor);
    expect(scanned).toBe(4);
    expect(window.size).toBe(2);
    expect(remembers(window, plain)).toBe(true);
    expect(remembers(window, last)).toBe(true);
    expect(remembers(window, redriven)).toBe(false);
  });

  it('remembers an envelope with an index by its index alone, as the live router does, and skips one whose index cannot describe its body', async () => {
    const indexed = [ev('p7-a'), ev('p7-b')];
    const { body, index } = encodeIndexedEnvelope(indexed);
    // A body of the right length that is no envelope at all: read, it would be skipped.
    const unread = Buffer.alloc(body.length, 0x78);
    await js.publish(Subjects.ingest(7, 'order.created'), unread, { headers: indexHeaders(index) });
    const misfit = ev('p7-misfit');
    // A valid body whose index is of another envelope: skipped, as the live router's stage skips it.
    await js.publish(Subjects.ingest(7, 'order.created'), encodeEnvelope([misfit]), { headers: indexHeaders(index) });
    const floor = await store(7, [ev('p7-last')]);

    const { window, scanned } = await rebuildDedup(js, jsm, 7, WINDOW_MS, floor);
    expect(scanned).toBe(3);
    expect(window.size).toBe(3);
    for (const e of [...indexed, ev('p7-last')]) expect(remembers(window, e)).toBe(true);
    expect(remembers(window, misfit)).toBe(false);
  });

  it('reads back only the duplicate window before the floor, by stream time', async () => {
    const old = ev('p5-old');
    await store(5, [old]);
    await new Promise((r) => setTimeout(r, 1_200));
    const recent = ev('p5-recent');
    await store(5, [recent]);
    const floor = await store(5, [ev('p5-floor')]);
    const floorAt = (await jsm.streams.getMessage(Streams.ingest, { seq: floor }))!.time.getTime();

    const { window, scanned } = await rebuildDedup(js, jsm, 5, 1_000, floor);
    // The old envelope is not even read: the scan starts a window before the floor.
    expect(scanned).toBe(2);
    expect(window.size).toBe(2);
    // Asked at the floor's stream time, as the router asks of the next event.
    expect(remembers(window, recent, floorAt)).toBe(true);
    expect(remembers(window, old, floorAt)).toBe(false);
  });

  it('reads a partition of more envelopes than one fetch brings, to the floor exactly', async () => {
    const events = Array.from({ length: 2_500 }, (_, i) => ev(`p6-${i}`));
    let floor = 0;
    for (let i = 0; i < events.length; i++) {
      const seq = await store(6, [events[i]]);
      if (i === 2_199) floor = seq;
    }
    const { window, scanned } = await rebuildDedup(js, jsm, 6, WINDOW_MS, floor);
    expect(scanned).toBe(2_200);
    expect(window.size).toBe(2_200);
    expect(remembers(window, events[0])).toBe(true);
    expect(remembers(window, events[2_199])).toBe(true);
    expect(remembers(window, events[2_200])).toBe(false);
  }, 60_000);
});
