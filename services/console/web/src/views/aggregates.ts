/** One key of an aggregation, its windows live (a chart and a table), as the aggregator stores them. */
import { follow, type StreamControl } from '../api.js';
import { h, show, time } from '../dom.js';
import type { View } from '../main.js';
import type { WindowResult } from '../types.js';

const Svg = 'http://www.w3.org/2000/svg';

function svg(tag: string, attrs: Record<string, string | number>, text?: string): SVGElement {
  const el = document.createElementNS(Svg, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

function numericFields(r: WindowResult): string[] {
  const fields = new Set<string>();
  for (const w of r.windows) for (const [k, v] of Object.entries(w)) if (typeof v === 'number') fields.add(k);
  return [...fields];
}

function chart(r: WindowResult, field: string): SVGElement {
  const windows = r.windows.slice(-30);
  const width = 600;
  const height = 200;
  const max = Math.max(1, ...windows.map((w) => Number(w[field] ?? 0)));
  // Bars at most 60 wide, so one window is a bar rather than the whole chart.
  const bar = Math.min(60, width / Math.max(windows.length, 1));
  const root = svg('svg', { class: 'chart', viewBox: `0 0 ${width} ${height + 20}`, role: 'img', 'aria-label': `${field} per window of ${r.name}/${r.key}` });
  windows.forEach((w, i) => {
    const v = Number(w[field] ?? 0);
    const barHeight = (v / max) * (height - 14);
    const rect = svg('rect', { x: i * bar + 2, y: height - barHeight, width: Math.max(bar - 4, 1), height: barHeight, class: w.closed ? '' : 'open' });
    rect.appendChild(svg('title', {}, `${time(w.start)}: ${field} ${v}${w.closed ? '' : ' (open)'}`));
    root.appendChild(rect);
    root.appendChild(svg('text', { x: i * bar + bar / 2, y: height - barHeight - 3, 'text-anchor': 'middle' }, String(v)));
  });
  if (windows.length > 0) {
    root.appendChild(svg('text', { x: 2, y: height + 14 }, time(windows[0].start)));
    root.appendChild(svg('text', { x: width - 2, y: height + 14, 'text-anchor': 'end' }, time(windows[windows.length - 1].end)));
  }
  return root;
}

export function aggregatesView(main: HTMLElement): View {
  const name = h('input', { id: 'agg-name', value: 'totals', required: true, size: 12 });
  const key = h('input', { id: 'agg-key', required: true, size: 24, placeholder: 'customer-42' });
  const field = h('select', { id: 'agg-field' }, h('option', { value: 'count' }, 'count'));
  const state = h('p', { 'aria-live': 'polite', id: 'agg-state' });
  const out = h('div', { id: 'agg-result' }, h('p', { class: 'empty' }, 'Give an aggregation and a key (a partition key) to watch its windows change live.'));
  const form = h(
    'form',
    { class: 'filters', 'aria-label': 'Watch an aggregation key' },
    h('label', { for: 'agg-name' }, 'Aggregation', name),
    h('label', { for: 'agg-key' }, 'Key', key),
    h('label', { for: 'agg-field' }, 'Chart', field),
    h('button', { type: 'submit' }, 'Watch'),
  );
  show(main, h('h2', {}, 'Aggregates'), form, state, out);
  let stream: StreamControl | undefined;
  let result: WindowResult | undefined;

  const draw = () => {
    if (!result) return;
    const fields = numericFields(result);
    const chosen = field.value;
    field.replaceChildren(...(fields.length ? fields : ['count']).map((f) => h('option', { value: f }, f)));
    field.value = fields.includes(chosen) ? chosen : (fields[0] ?? 'count');
    if (result.windows.length === 0) {
      show(out, h('p', { class: 'empty' }, `No windows for ${result.name}/${result.key} yet: they appear as its events are aggregated.`));
      return;
    }
    const columns = ['start', 'end', 'closed', ...fields];
    show(
      out,
      chart(result, field.value),
      h('p', { class: 'muted' }, 'Blue: closed windows; orange: still open.'),
      h(
        'div',
        { class: 'scroll' },
        h(
          'table',
          { 'aria-label': 'Windows' },
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              columns.map((c) => h('th', { scope: 'col' }, c)),
            ),
          ),
          h(
            'tbody',
            {},
            result.windows
              .slice()
              .reverse()
              .map((w) =>
                h(
                  'tr',
                  { 'data-window': w.start },
                  columns.map((c) => h('td', {}, c === 'start' || c === 'end' ? time(String(w[c])) : String(w[c] ?? ''))),
                ),
              ),
          ),
        ),
      ),
    );
  };
  field.addEventListener('change', draw);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    stream?.stop();
    result = undefined;
    const path = `/api/aggregates/${encodeURIComponent(name.value.trim())}/${encodeURIComponent(key.value)}/events`;
    state.textContent = 'Connecting…';
    stream = follow(
      path,
      {
        ready: () => {
          if (result) return;
          show(out, h('p', { class: 'empty' }, `No windows for ${name.value.trim()}/${key.value} yet: they appear as its events are aggregated.`));
        },
        result: (data) => {
          result = (data as { result: WindowResult }).result;
          state.textContent = `Live: ${name.value}/${key.value}, updated ${new Date().toLocaleTimeString('en-GB')}`;
          draw();
        },
      },
      (s, why) => {
        if (s === 'open') state.textContent = `Live: ${name.value}/${key.value}`;
        else state.textContent = s === 'refused' ? `Refused: ${why}` : `Reconnecting (${why})…`;
      },
    );
  });
  return { leave: () => stream?.stop() };
}
