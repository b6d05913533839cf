/**
 * The one entry both HTTP and NATS requests go through: parse, validate,
 * pack, store. Answers 202 only after JetStream has stored every envelope;
 * a request with any invalid event stores nothing.
 */
import type { JetStreamClient } from '@nats-io/jetstream';
import { publishAll } from '@mesh/messaging';
import { errorMessage, type Logger } from '@mesh/runtime';
import { parseRequest } from './parse-request';
import { prepareEvents } from './prepare-events';

export interface AcceptAnswer {
  status: number;
  body: Record<string, unknown>;
  headers?: Record<string, string>;
}

export interface AcceptDeps {
  js: JetStreamClient;
  partitions: number;
  maxEvents: number;
  maxBytes: number;
  log: Logger;
  isConnected(): boolean;
}

const RETRY_AFTER_S = '1';

export async function accept(deps: AcceptDeps, contentType: string | undefined, body: Uint8Array, defaultType?: string): Promise<AcceptAnswer> {
  const parsed = parseRequest(contentType, body);
  if (!parsed.ok) return { status: parsed.status, body: { error: parsed.error, ...(parsed.problems ? { problems: parsed.problems } : {}) } };

  const prepared = prepareEvents(parsed.candidates, {
    partitions: deps.partitions,
    maxEvents: deps.maxEvents,
    maxBytes: deps.maxBytes,
    now: new Date(),
    defaultType,
  });
  if (!prepared.ok) {
    return { status: 400, body: { error: `${prepared.problems.length} problem(s) in the request; nothing was stored`, problems: prepared.problems } };
  }
  if (!deps.isConnected()) {
    return { status: 503, body: { error: 'not connected to NATS; nothing was stored, retry later' }, headers: { 'retry-after': RETRY_AFTER_S } };
  }
  try {
    await publishAll(deps.js, prepared.envelopes);
  } catch (err) {
    deps.log.warn('could not store events', { error: err, envelopes: prepared.envelopes.length });
    // Some envelopes may be stored: a retry with the same events is deduplicated.
    return {
      status: 503,
      body: { error: `JetStream could not store the events (${errorMessage(err)}); retry the same request` },
      headers: { 'retry-after': RETRY_AFTER_S },
    };
  }
  return { status: 202, body: { accepted: prepared.events.length, ids: prepared.events.map((e) => e.id) } };
}
