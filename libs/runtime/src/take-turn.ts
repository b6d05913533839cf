/**
 * Turns of the event loop for partition batches, one batch per turn.
 *
 * A batch's work up to its first real wait (decoding, handlers that do not
 * await I/O, encoding) runs as one chain of microtasks, and nothing else runs
 * meanwhile: not timers, not socket reads. When the publish acks of many
 * partitions come back in one socket read, all of their next batches used to
 * start in the same turn: at saturation the processor ran 0.5-2.7 s without
 * letting its lease renewals (a timer) or their answers (a socket read) in,
 * lost every lease at once and stood still while it took them back.
 *
 * `takeTurn()` resolves in a turn of its own (a setImmediate queued after the
 * previous caller's turn has started), so the batches of different partitions
 * run one per turn with I/O and timers between them. An idle process pays one
 * setImmediate per batch.
 */
let last: Promise<void> = Promise.resolve();

export function takeTurn(): Promise<void> {
  const turn = last.then(() => new Promise<void>((resolve) => setImmediate(resolve)));
  last = turn;
  return turn;
}
