/**
 * Talking to the console: JSON requests and Server-Sent Events, both with
 * the API key when one is needed. The events are read from a fetch stream
 * (EventSource cannot send an Authorization header); a stream that breaks
 * is opened again after a second, until it is stopped.
 */

const KeyItem = 'mesh-console-key';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export function apiKey(): string | null {
  return sessionStorage.getItem(KeyItem);
}

export function setApiKey(key: string | null): void {
  if (key) sessionStorage.setItem(KeyItem, key);
  else sessionStorage.removeItem(KeyItem);
}

function headers(extra: Record<string, string> = {}): Record<string, string> {
  const key = apiKey();
  return { ...extra, ...(key ? { authorization: `Bearer ${key}` } : {}) };
}

/** Told when a request is refused for want of a key (401/403). */
export let onUnauthorized: (message: string) => void = () => undefined;
export function setOnUnauthorized(fn: (message: string) => void): void {
  onUnauthorized = fn;
}

export async function api<T>(path: string, init: { method?: string; body?: unknown } = {}): Promise<T> {
  let res: Response;
  try {
    res = await fetch(path, {
      method: init.method ?? 'GET',
      headers: headers(init.body === undefined ? {} : { 'content-type': 'application/json' }),
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
    });
  } catch {
    throw new ApiError(0, 'the console does not answer (is it running?)');
  }
  const text = await res.text();
  let data: unknown = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { error: text };
  }
  if (!res.ok) {
    const message = (data as { error?: string } | null)?.error ?? `HTTP ${res.status}`;
    if (res.status === 401 || res.status === 403) onUnauthorized(message);
    throw new ApiError(res.status, message);
  }
  return data as T;
}

export interface StreamHandlers {
  [event: string]: (data: unknown) => void;
}

export interface StreamControl {
  stop(): void;
}

/** Follow `path` as Server-Sent Events; `onState` hears 'open', 'retrying' (with why) and 'refused'. */
export function follow(path: string, handlers: StreamHandlers, onState: (state: 'open' | 'retrying' | 'refused', why?: string) => void): StreamControl {
  let stopped = false;
  let abort = new AbortController();
  const run = async () => {
    while (!stopped) {
      abort = new AbortController();
      try {
        const res = await fetch(path, { headers: headers({ accept: 'text/event-stream' }), signal: abort.signal });
        if (res.status === 401 || res.status === 403 || res.status === 400) {
          const why = ((await res.json().catch(() => ({}))) as { error?: string }).error ?? `HTTP ${res.status}`;
          if (res.status !== 400) onUnauthorized(why);
          onState('refused', why);
          return;
        }
        if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
        onState('open');
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let end: number;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            let event = 'message';
            const data: string[] = [];
            for (const line of block.split('\n')) {
              if (line.startsWith('event: ')) event = line.slice(7);
              else if (line.startsWith('data: ')) data.push(line.slice(6));
            }
            if (data.length > 0) handlers[event]?.(JSON.parse(data.join('\n')));
          }
        }
        if (!stopped) onState('retrying', 'the console ended the stream');
      } catch (err) {
        if (stopped) return;
        onState('retrying', (err as Error).message === 'Failed to fetch' ? 'the console does not answer' : (err as Error).message);
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  };
  void run();
  return {
    stop() {
      stopped = true;
      abort.abort();
    },
  };
}
