/**
 * The stage contract (stage-contract.ts) against the router: its output per
 * key is what it wrote to MESH_ROUTED. It has no per-key concurrency setting;
 * its concurrency is its partitions, handled at once, and its instances.
 */
import { Streams } from '@mesh/contracts';
import { describeStageContract, streamOutput } from './stage-contract';

describeStageContract({
  stage: 'router',
  specFile: __filename,
  concurrencyEnv: {},
  readOutput: (natsUrl, keys) => streamOutput(natsUrl, Streams.routed, keys),
});
