import { takeTurn } from './take-turn';

function busy(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

describe('takeTurn', () => {
  it('runs the work of concurrent callers in turns of their own, with timers and I/O between them', async () => {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const ticksSeen: number[] = [];
    // Five batches that become ready at once, each 20 ms of synchronous work.
    await Promise.all(
      Array.from({ length: 5 }, async () => {
        await takeTurn();
        ticksSeen.push(ticks);
        busy(20);
      }),
    );
    clearInterval(timer);
    // Timers fired between the batches: each one saw more ticks than the one before.
    for (let i = 1; i < ticksSeen.length; i++) expect(ticksSeen[i]).toBeGreaterThan(ticksSeen[i - 1]);
  });

  it('keeps the order in which turns were asked for', async () => {
    const order: number[] = [];
    await Promise.all(
      [1, 2, 3, 4].map(async (n) => {
        await takeTurn();
        order.push(n);
      }),
    );
    expect(order).toEqual([1, 2, 3, 4]);
  });
});
