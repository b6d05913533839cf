/** A stage's events live, like `nats sub`, with a type filter; paused and resumed by the user. */
import { follow, type StreamControl } from '../api.js';
import { h, show } from '../dom.js';
import type { View } from '../main.js';

const Kept = 200;

interface Tailed {
  at: string;
  subject: string;
  event?: { id: string; type: string; source: string; partitionkey?: string; subject?: string; data?: unknown };
  value?: unknown;
}

export function eventsView(main: HTMLElement): View {
  const stage = h(
    'select',
    { id: 'tail-stage' },
    ['ingest', 'router', 'processor', 'aggregator'].map((s) => h('option', { value: s }, `${s} (its output)`)),
  );
  const filter = h('input', { id: 'tail-filter', placeholder: 'order.*', size: 16 });
  const toggle = h('button', { type: 'submit', id: 'tail-toggle' }, 'Start');
  const clear = h('button', { type: 'button', class: 'secondary' }, 'Clear');
  const state = h('p', { 'aria-live': 'polite', id: 'tail-state' }, 'Paused. Start to see events as they pass.');
  const log = h('div', { class: 'log', id: 'tail-log', tabindex: 0, 'aria-label': 'Events' });
  const form = h(
    'form',
    { class: 'filters', 'aria-label': 'Tail events' },
    h('label', { for: 'tail-stage' }, 'Stage', stage),
    h('label', { for: 'tail-filter' }, 'Event types (* one token, > the rest)', filter),
    toggle,
    clear,
  );
  show(main, h('h2', {}, 'Events'), form, state, log);
  let stream: StreamControl | undefined;
  let lines = 0;
  let skipped = 0;

  const stop = (why: string) => {
    stream?.stop();
    stream = undefined;
    toggle.textContent = 'Resume';
    state.textContent = why;
  };
  const line = (t: Tailed) => {
    const e = t.event;
    const text = e
      ? `${t.at.slice(11, 23)}  ${t.subject}  ${e.type}  key=${e.partitionkey ?? e.subject ?? e.source}  id=${e.id}  ${JSON.stringify(e.data ?? null)}`
      : `${t.at.slice(11, 23)}  ${t.subject}  ${JSON.stringify(t.value)}`;
    log.prepend(h('div', { 'data-type': e?.type ?? '' }, text));
    lines++;
    while (lines > Kept && log.lastChild) {
      log.lastChild.remove();
      lines--;
    }
  };
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    if (stream) return stop('Paused. Resume to see new events (what passed meanwhile is not shown).');
    const q = new URLSearchParams({ stage: stage.value, ...(filter.value.trim() ? { filter: filter.value.trim() } : {}) });
    toggle.textContent = 'Pause';
    state.textContent = 'Connecting…';
    stream = follow(
      `/api/tail?${q}`,
      {
        ready: (d) => (state.textContent = `Live: ${(d as { subject: string }).subject}${filter.value ? `, types ${filter.value}` : ''}. Waiting for events…`),
        event: (d) => {
          if (lines === 0 || state.textContent?.startsWith('Live'))
            state.textContent = `Live: ${stage.value}${filter.value ? `, types ${filter.value}` : ''}${skipped ? ` (${skipped} skipped: too fast to show)` : ''}`;
          line(d as Tailed);
        },
        skipped: (d) => (skipped += (d as { count: number }).count),
      },
      (s, why) => {
        if (s === 'refused') stop(`Refused: ${why}`);
        else if (s === 'retrying') state.textContent = `Reconnecting (${why})…`;
      },
    );
  });
  stage.addEventListener('change', () => stream && stop('Paused: the stage changed. Start again to follow it.'));
  clear.addEventListener('click', () => {
    log.replaceChildren();
    lines = 0;
  });
  return { leave: () => stream?.stop() };
}
