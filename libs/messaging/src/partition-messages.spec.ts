import type { JetStreamClient } from '@nats-io/jetstream';
import { partitionMessages } from './partition-messages';

/** A pull the server never ends (its 408 lost): it yields nothing until stopped. */
class SilentPull {
  stopped = false;
  private wake?: () => void;
  constructor(readonly maxMessages: number) {}
  stop(): void {
    this.stopped = true;
    this.wake?.();
  }
  // Yields nothing: it only waits until stopped, as an idle consumer does.
  // eslint-disable-next-line require-yield
  async *[Symbol.asyncIterator]() {
    if (!this.stopped) await new Promise<void>((r) => (this.wake = r));
  }
}

/** `busyPullsExpire`: a pull for more than one message ends with nothing after 20 ms, as a busy pull on an idle partition does at its expiry. */
function fakeJs(numWaiting: number, o: { busyPullsExpire?: boolean } = {}) {
  const pulls: SilentPull[] = [];
  const consumer = {
    fetch: async (opts: { max_messages: number }) => {
      const p = new SilentPull(opts.max_messages);
      if (o.busyPullsExpire && opts.max_messages > 1) setTimeout(() => p.stop(), 20);
      pulls.push(p);
      return p;
    },
    info: async () => ({ num_waiting: numWaiting }),
  };
  const js = { consumers: { get: async () => consumer } } as unknown as JetStreamClient;
  return { js, pulls };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(check: () => boolean, timeoutMs: number): Promise<void> {
  const giveUpAt = Date.now() + timeoutMs;
  while (!check() && Date.now() < giveUpAt) await sleep(5);
}

describe('partitionMessages', () => {
  it('ends a pull the server no longer holds shortly after it expired, and pulls again', async () => {
    const { js, pulls } = fakeJs(0);
    const sub = partitionMessages(js, 'S', 'c', { expiresMs: 100 }).subscribe();
    await sleep(400);
    sub.unsubscribe();
    // Expiry 100 ms + the 50 ms check: a new pull after about 150 ms, not after two missed heartbeats.
    expect(pulls.length).toBeGreaterThanOrEqual(2);
    expect(pulls[0].stopped).toBe(true);
  });

  it('after a pull that brought nothing, waits for one message with a long pull', async () => {
    const { js, pulls } = fakeJs(1, { busyPullsExpire: true });
    const sub = partitionMessages(js, 'S', 'c', { maxMessages: 64 }).subscribe();
    await until(() => pulls.length >= 2, 1_000);
    await sleep(50);
    sub.unsubscribe();
    expect(pulls.map((p) => p.maxMessages)).toEqual([64, 1]);
  });

  it('ends an idle pull at once on a graceful stop, instead of at its expiry', async () => {
    const { js, pulls } = fakeJs(1, { busyPullsExpire: true });
    const stop = new AbortController();
    let completed = false;
    partitionMessages(js, 'S', 'c', { stop: stop.signal }).subscribe({ complete: () => (completed = true) });
    await until(() => pulls.length === 2, 1_000);
    stop.abort();
    // The loop before let every pull run to its expiry (30 s for an idle one).
    await until(() => completed, 2_000);
    expect({ idle: pulls[1].maxMessages === 1, stopped: pulls[1].stopped, completed, pulls: pulls.length }).toEqual({
      idle: true,
      stopped: true,
      completed: true,
      pulls: 2,
    });
  });

  it('lets a busy pull run out on a graceful stop: everything the server sent it arrives first', async () => {
    const { js, pulls } = fakeJs(1);
    const stop = new AbortController();
    let completed = false;
    partitionMessages(js, 'S', 'c', { expiresMs: 60_000, stop: stop.signal }).subscribe({ complete: () => (completed = true) });
    await until(() => pulls.length === 1, 1_000);
    stop.abort();
    await sleep(100);
    expect({ stopped: pulls[0].stopped, completed }).toEqual({ stopped: false, completed: false });
    // Its end (the server's 408) ends the loop, with no pull after it.
    pulls[0].stop();
    await until(() => completed, 1_000);
    expect({ completed, pulls: pulls.length }).toEqual({ completed: true, pulls: 1 });
  });

  it('leaves a pull alone while the server still holds a pull request for the consumer', async () => {
    const { js, pulls } = fakeJs(1);
    const sub = partitionMessages(js, 'S', 'c', { expiresMs: 100 }).subscribe();
    await sleep(400);
    expect(pulls).toHaveLength(1);
    expect(pulls[0].stopped).toBe(false);
    sub.unsubscribe();
  });
});
