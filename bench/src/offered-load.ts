/**
 * Offers a load to ingest for a fixed time: requests of `batch` events are
 * due at a steady rate (open loop), and a pool of `concurrency` workers
 * sends each when it is due. A request that finds no free worker is sent
 * late, and its events are timed from when they were due, not from when they
 * went out, so a stalled system is not flattered by a stalled client
 * (coordinated omission). At 'max' (an infinite rate) every worker sends its
 * next request as soon as the previous one is answered (closed loop).
 */
import { performance } from 'node:perf_hooks';
import type { IngestClient } from './ingest-client';
import type { ProbeEvent, Workload } from './workload';

export interface OfferedLoad {
  /** Events/s; Infinity for as fast as the workers go. */
  rate: number;
  batch: number;
  concurrency: number;
  durationMs: number;
}

export interface PostingResult {
  requests: number;
  events: number;
  /** performance.now() when the first request was due. */
  startedAt: number;
  /** performance.now() when the last request was answered 202. */
  lastAcceptedAt: number;
  /** Per request, ms from sending to the 202. */
  acceptMs: number[];
  /** Most a request was sent after it was due (ms): large means the client or ingest could not keep up. */
  maxLagMs: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * @param onSend called with a request's probe events and the time they count from, just before it is sent.
 */
export async function offerLoad(
  client: IngestClient,
  workload: Workload,
  load: OfferedLoad,
  onSend: (probes: ProbeEvent[], at: number) => void,
): Promise<PostingResult> {
  const paced = Number.isFinite(load.rate);
  const intervalMs = paced ? (load.batch / load.rate) * 1000 : 0;
  const result: PostingResult = { requests: 0, events: 0, startedAt: performance.now(), lastAcceptedAt: 0, acceptMs: [], maxLagMs: 0 };
  const endAt = result.startedAt + load.durationMs;
  let slot = 0;
  let failed = false;

  const worker = async () => {
    while (!failed) {
      let at: number;
      if (paced) {
        const due = result.startedAt + slot++ * intervalMs;
        if (due >= endAt) return;
        const wait = due - performance.now();
        if (wait >= 1) await sleep(wait);
        at = due;
      } else {
        at = performance.now();
        if (at >= endAt) return;
      }
      const { events, probes } = workload.next(load.batch);
      const sentAt = performance.now();
      result.maxLagMs = Math.max(result.maxLagMs, sentAt - at);
      onSend(probes, at);
      try {
        await client.post(events);
      } catch (err) {
        failed = true;
        throw err;
      }
      const done = performance.now();
      result.acceptMs.push(done - sentAt);
      result.requests++;
      result.events += events.length;
      result.lastAcceptedAt = Math.max(result.lastAcceptedAt, done);
    }
  };
  await Promise.all(Array.from({ length: load.concurrency }, worker));
  return result;
}
