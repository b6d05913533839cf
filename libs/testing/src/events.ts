/** Event factories and an HTTP client that behaves like a careful user's. */
import type { CloudEvent } from '@mesh/contracts';

export function orderEvent(key: string, n: number, amount: number, extra: Partial<CloudEvent> = {}): CloudEvent {
  return {
    specversion: '1.0',
    id: `${key}-${n}`,
    source: 'test://shop',
    type: 'order.created',
    partitionkey: key,
    data: { orderId: `${key}-${n}`, amount, seq: n },
    ...extra,
  };
}

export type Format = 'single' | 'batch' | 'ndjson';

export function encodeRequest(events: readonly CloudEvent[], format: Format): { contentType: string; body: string } {
  switch (format) {
    case 'single':
      if (events.length !== 1) throw new Error('a single request carries one event');
      return { contentType: 'application/cloudevents+json', body: JSON.stringify(events[0]) };
    case 'batch':
      return { contentType: 'application/cloudevents-batch+json', body: JSON.stringify(events) };
    case 'ndjson':
      return { contentType: 'application/x-ndjson', body: `${events.map((e) => JSON.stringify(e)).join('\n')}\n` };
  }
}

/**
 * POST events until they are accepted: retries on 503 and on a dropped
 * connection with the same body (so the same event ids), as a user's client
 * would. Any other answer is an error.
 */
export async function postEvents(baseUrl: string, events: readonly CloudEvent[], format: Format, timeoutMs = 60_000): Promise<void> {
  const { contentType, body } = encodeRequest(events, format);
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 1; ; attempt++) {
    let status: number | undefined;
    let text = '';
    try {
      const res = await fetch(`${baseUrl}/v1/events`, { method: 'POST', headers: { 'content-type': contentType }, body });
      status = res.status;
      text = await res.text();
    } catch (err) {
      text = (err as Error).message;
    }
    if (status === 202) return;
    if (status !== undefined && status !== 503) throw new Error(`POST /v1/events answered ${status}: ${text}`);
    if (Date.now() > deadline) throw new Error(`events not accepted within ${timeoutMs} ms; last: ${status ?? 'no answer'} ${text}`);
    await new Promise((r) => setTimeout(r, Math.min(1000, 50 * attempt)));
  }
}

/** `eventually` gave up: what it waited for never held, and what it saw last. */
export class EventuallyTimeoutError extends Error {
  constructor(
    message: string,
    /** What `describe` said at the end, when given. */
    readonly state?: unknown,
    /** The last error a check threw, if any did. */
    readonly lastError?: unknown,
  ) {
    super(message);
    this.name = 'EventuallyTimeoutError';
  }
}

/**
 * Poll until `check` returns true. A check that throws counts as not yet (a
 * service busy recovering). When the time is up it throws an
 * EventuallyTimeoutError that says what it saw: how many checks ran, what
 * the last one returned, the last error a check threw, and the state as
 * `describe` reports it (the totals, the consumers left undrained...), so a
 * failure names the difference instead of `expected true, got false`.
 */
export async function eventually(check: () => Promise<boolean>, timeoutMs: number, intervalMs = 250, describe?: () => unknown): Promise<true> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (let checks = 1; ; checks++) {
    let ok: boolean | undefined;
    try {
      ok = await check();
    } catch (err) {
      lastError = err;
    }
    if (ok === true) return true;
    if (Date.now() > deadline) {
      const last = ok === undefined ? `the last check threw: ${errorText(lastError)}` : `the last check returned ${String(ok)}`;
      const earlier = ok !== undefined && lastError !== undefined ? `; an earlier check threw: ${errorText(lastError)}` : '';
      let state: unknown;
      let stateText = '';
      if (describe) {
        try {
          state = await describe();
          stateText = `; state: ${typeof state === 'string' ? state : JSON.stringify(state)}`;
        } catch (err) {
          stateText = `; describing the state threw: ${errorText(err)}`;
        }
      }
      throw new EventuallyTimeoutError(`condition not met within ${timeoutMs} ms (${checks} checks): ${last}${earlier}${stateText}`, state, lastError);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

function errorText(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  // fetch says only "fetch failed"; what failed (refused, reset, closed) is in its cause.
  const cause = err.cause instanceof Error ? ` (cause: ${err.cause.name}: ${err.cause.message})` : '';
  return `${err.name}: ${err.message}${cause}`;
}

export interface Totals {
  count: number;
  sum: number;
}

/** One key's totals over all its windows, from the aggregator's query API. */
export async function totalsOf(aggregatorUrl: string, key: string): Promise<Totals> {
  const res = await fetch(`${aggregatorUrl}/v1/aggregates/totals/${encodeURIComponent(key)}`);
  if (res.status !== 200) throw new Error(`GET totals/${key} answered ${res.status}: ${await res.text()}`);
  const body = (await res.json()) as { windows: Totals[] };
  return body.windows.reduce((t, w) => ({ count: t.count + w.count, sum: t.sum + w.sum }), { count: 0, sum: 0 });
}

/** Totals of many keys at once, as a plain object (readable in a failed toEqual). */
export async function totalsFor(aggregatorUrl: string, keys: Iterable<string>): Promise<Record<string, Totals>> {
  return Object.fromEntries(await Promise.all([...keys].map(async (k) => [k, await totalsOf(aggregatorUrl, k)] as const)));
}
