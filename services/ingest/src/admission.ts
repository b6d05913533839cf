/**
 * The answers of ingest's admission control, refused before anything is
 * stored: 403 for events a key may not send, 429 for a client over its rate
 * limit, 503 while ingest holds its bound in flight.
 */
import type { RateDecision, RefusedEvent } from '@mesh/runtime';
import type { AcceptAnswer } from './accept';
import type { InFlightBudget } from './in-flight-budget';

export function forbiddenEvents(keyName: string, refused: RefusedEvent[]): AcceptAnswer {
  return {
    status: 403,
    body: {
      error: `the API key '${keyName}' may not send ${refused.length} of the events (their source or type is not among the key's); nothing was stored`,
      refused,
    },
  };
}

export function tooManyRequests(decision: RateDecision): AcceptAnswer {
  return { status: 429, body: { error: `${decision.reason}; nothing was stored` }, headers: decision.headers };
}

export function overloaded(budget: InFlightBudget, what: 'events' | 'bytes'): AcceptAnswer {
  const bound = what === 'events' ? `${budget.maxEvents} events (MESH_MAX_IN_FLIGHT_EVENTS)` : `${budget.maxBytes} bytes (MESH_MAX_IN_FLIGHT_BYTES)`;
  return {
    status: 503,
    body: { error: `ingest is at its bound of ${bound} in flight; nothing was stored, retry after Retry-After` },
    headers: { 'retry-after': '1' },
  };
}

/** Thrown from a body read to stop it when the bytes in flight reach their bound. */
export class InFlightFullError extends Error {
  constructor() {
    super('in-flight bytes bound reached');
    this.name = 'InFlightFullError';
  }
}
