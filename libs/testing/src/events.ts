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

/**
 * Poll until `check` returns true or the time is up; returns the last value
 * of `check`. A check that throws counts as not yet (a service busy
 * recovering); if the last one threw when time is up, that error is thrown.
 */
export async function eventually(check: () => Promise<boolean>, timeoutMs: number, intervalMs = 250): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let error: unknown;
    let ok = false;
    try {
      ok = await check();
    } catch (err) {
      error = err;
    }
    if (ok) return true;
    if (Date.now() > deadline) {
      if (error !== undefined) throw error;
      return false;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
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
