import type { JetStreamClient } from '@nats-io/jetstream';
import { partitionMessages } from './partition-messages';

/** A pull the server never ends (its 408 lost): it yields nothing until stopped. */
class SilentPull {
  stopped = false;
  private wake?: () => void;
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

function fakeJs(numWaiting: number) {
  const pulls: SilentPull[] = [];
  const consumer = {
    fetch: async () => {
      const p = new SilentPull();
      pulls.push(p);
      return p;
    },
    info: async () => ({ num_waiting: numWaiting }),
  };
  const js = { consumers: { get: async () => consumer } } as unknown as JetStreamClient;
  return { js, pulls };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('partitionMessages', () => {
  it('ends a pull the server no longer holds shortly after it expired, and pulls again', async () => {
    const { js, pulls } = fakeJs(0);
    const sub = partitionMessages(js, 'S', 'c', { expiresMs: 100 }).subscribe();
    await sleep(400);
    sub.unsubscribe();
    // Expiry 100 ms + the 50 ms check: a new pull about every 150 ms, not after two missed heartbeats.
    expect(pulls.length).toBeGreaterThanOrEqual(2);
    expect(pulls[0].stopped).toBe(true);
  });

  it('ends the pull under way at once on a graceful stop, instead of at its expiry', async () => {
    const { js, pulls } = fakeJs(1);
    const stop = new AbortController();
    let completed = false;
    partitionMessages(js, 'S', 'c', { expiresMs: 60_000, stop: stop.signal }).subscribe({ complete: () => (completed = true) });
    while (pulls.length === 0) await sleep(5);
    stop.abort();
    // The old loop let the pull run to its expiry (a minute here).
    const giveUpAt = Date.now() + 2_000;
    while (!completed && Date.now() < giveUpAt) await sleep(5);
    expect({ stopped: pulls[0].stopped, completed, pulls: pulls.length }).toEqual({ stopped: true, completed: true, pulls: 1 });
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
