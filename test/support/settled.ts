/**
 * Wait until the mesh has settled: every router, processor and aggregator
 * partition consumer drained, seen twice in a row. One look is not enough:
 * it asks the 48 consumers at once, not atomically, so a message passing
 * from one stage to the next between two answers is seen by neither; by the
 * second look it sits in the later stage (it acks only after it applied it),
 * so two looks in a row see it. Throws naming the consumers still busy.
 */
import { undrainedConsumers, waitUntilDrained } from './mesh-state';

export async function waitUntilSettled(natsUrl: string, partitions: number, timeoutMs: number): Promise<void> {
  for (let look = 0; look < 2; look++) {
    if (!(await waitUntilDrained(natsUrl, partitions, timeoutMs))) {
      throw new Error(`the mesh did not drain within ${timeoutMs} ms: ${(await undrainedConsumers(natsUrl, partitions)).join('; ')}`);
    }
  }
}
