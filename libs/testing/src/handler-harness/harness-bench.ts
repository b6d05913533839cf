/**
 * How long a handler test takes through the kit: `node
 * libs/testing/dist/handler-harness/harness-bench.js` (after `npm run
 * build`). One run is a typical test of a stateful handler: a harness made,
 * three sends (one with a crash before the acks), a look at state and
 * outputs. Prints the first run (cold) and the median, p99 and max of the next.
 */
import { defineHandler } from '@mesh/runtime';
import { createHandlerHarness } from './handler-harness';

const counter = defineHandler({
  name: 'counter',
  types: ['tick'],
  handle(_event, ctx) {
    const n = (ctx.state.get<number>() ?? 0) + 1;
    ctx.state.set(n);
    return { type: 'tick.counted', data: { n } };
  },
});

async function oneTest(): Promise<void> {
  const mesh = createHandlerHarness({ handlers: [counter] });
  await mesh.send([
    { type: 'tick', partitionkey: 'a' },
    { type: 'tick', partitionkey: 'b' },
  ]);
  await mesh.send({ type: 'tick', partitionkey: 'a' });
  await mesh.send({ type: 'tick', partitionkey: 'a' }, { crash: 'before-ack' });
  if (mesh.state('counter', 'a') !== 3 || mesh.emitted().length !== 4) throw new Error('the bench handler gave a wrong result');
}

async function main(): Promise<void> {
  const runs = Number(process.argv[2] ?? 500);
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    await oneTest();
    times.push(performance.now() - start);
  }
  const first = times[0];
  const rest = times.slice(1).sort((a, b) => a - b);
  const at = (q: number) => rest[Math.min(rest.length - 1, Math.floor(q * rest.length))].toFixed(2);
  console.log(JSON.stringify({ runs, first_ms: first.toFixed(2), median_ms: at(0.5), p99_ms: at(0.99), max_ms: rest[rest.length - 1].toFixed(2) }));
}

void main();
