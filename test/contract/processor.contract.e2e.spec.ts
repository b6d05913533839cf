/**
 * The stage contract (stage-contract.ts) against the processor: its output
 * per key is what its handlers emitted to MESH_PROCESSED (the `orders`
 * handler keeps `data.seq`), with 8 keys of a partition handled at once.
 */
import { Streams } from '@mesh/contracts';
import { describeStageContract, streamOutput } from './stage-contract';

describeStageContract({
  stage: 'processor',
  specFile: __filename,
  concurrencyEnv: { MESH_KEY_CONCURRENCY: '8' },
  readOutput: (natsUrl, keys) => streamOutput(natsUrl, Streams.processed, keys),
});
