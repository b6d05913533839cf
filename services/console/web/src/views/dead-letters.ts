/** Dead letters: list with filters, one dead letter's headers and body, redrive one, a selection or all matching (after a confirmation). */
import { api, ApiError } from '../api.js';
import { confirmDialog, h, show, time } from '../dom.js';
import type { View } from '../main.js';
import type { DeadLetterDetail, DeadLetterSummary, RedriveOutcome } from '../types.js';

const Stages = ['ingest', 'router', 'processor', 'aggregator'];

function localToIso(value: string): string {
  return value ? new Date(value).toISOString() : '';
}

export function deadLettersView(main: HTMLElement): View {
  const initial = new URLSearchParams(location.hash.split('?')[1] ?? '');
  const stage = h(
    'select',
    { id: 'dl-stage', name: 'stage' },
    h('option', { value: '' }, 'any'),
    Stages.map((s) => h('option', { value: s }, s)),
  );
  stage.value = initial.get('stage') ?? '';
  const handler = h('input', { id: 'dl-handler', name: 'handler', size: 12 });
  const kind = h('input', { id: 'dl-kind', name: 'kind', size: 12 });
  const since = h('input', { id: 'dl-since', name: 'since', type: 'datetime-local' });
  const until = h('input', { id: 'dl-until', name: 'until', type: 'datetime-local' });
  const filters = h(
    'form',
    { class: 'filters', 'aria-label': 'Filter dead letters' },
    h('label', { for: 'dl-stage' }, 'Stage', stage),
    h('label', { for: 'dl-handler' }, 'Handler', handler),
    h('label', { for: 'dl-kind' }, 'Error kind', kind),
    h('label', { for: 'dl-since' }, 'Since', since),
    h('label', { for: 'dl-until' }, 'Until', until),
    h('button', { type: 'submit' }, 'Filter'),
  );
  const redriveSelected = h('button', { type: 'button', id: 'redrive-selected', disabled: true }, 'Redrive selected');
  const redriveAll = h('button', { type: 'button', id: 'redrive-all', class: 'secondary' }, 'Redrive all matching');
  const outcome = h('div', { 'aria-live': 'polite', id: 'redrive-outcome' });
  const list = h('div', { class: 'scroll' });
  const detail = h('div', { id: 'dead-letter-detail' }, h('p', { class: 'empty' }, 'Choose a dead letter to see its headers and body.'));
  show(
    main,
    h('h2', {}, 'Dead letters'),
    filters,
    h('div', { class: 'toolbar' }, redriveSelected, redriveAll),
    outcome,
    h('div', { class: 'split' }, list, detail),
  );

  const selected = new Set<number>();
  let shown: DeadLetterSummary[] = [];
  const filter = () => ({
    stage: stage.value,
    handler: handler.value.trim(),
    kind: kind.value.trim(),
    since: localToIso(since.value),
    until: localToIso(until.value),
  });
  const updateButtons = () => {
    redriveSelected.disabled = selected.size === 0;
    redriveSelected.textContent = `Redrive selected (${selected.size})`;
    redriveAll.disabled = shown.length === 0;
  };

  const load = async () => {
    const q = new URLSearchParams(Object.entries(filter()).filter(([, v]) => v !== ''));
    try {
      const r = await api<{ deadLetters: DeadLetterSummary[]; matching: number; more: boolean }>(`/api/dead-letters?${q}`);
      shown = r.deadLetters;
      for (const seq of [...selected]) if (!shown.some((d) => d.seq === seq)) selected.delete(seq);
      if (shown.length === 0) {
        show(list, h('p', { class: 'empty' }, 'No dead letters match. Events that fail at a stage after their retries land here.'));
      } else {
        show(
          list,
          h(
            'p',
            {},
            `${r.matching} matching${r.matching > shown.length ? ` (showing the oldest ${shown.length})` : ''}${r.more ? '; the DLQ holds more than one read scans' : ''}`,
          ),
          h(
            'table',
            { 'aria-label': 'Dead letters' },
            h(
              'thead',
              {},
              h(
                'tr',
                {},
                h('th', { scope: 'col' }, h('span', { class: 'sr' }, 'select')),
                ['seq', 'time', 'stage', 'handler', 'error kind', 'error', 'event'].map((c) => h('th', { scope: 'col' }, c)),
              ),
            ),
            h(
              'tbody',
              {},
              shown.map((d) => {
                const box = h('input', { type: 'checkbox', 'aria-label': `select dead letter ${d.seq}`, checked: selected.has(d.seq) });
                box.addEventListener('change', () => {
                  if (box.checked) selected.add(d.seq);
                  else selected.delete(d.seq);
                  updateButtons();
                });
                return h(
                  'tr',
                  { 'data-seq': d.seq },
                  h('td', {}, box),
                  h(
                    'td',
                    {},
                    h(
                      'button',
                      { type: 'button', class: 'secondary', onclick: () => void open(d.seq), 'aria-label': `show dead letter ${d.seq}` },
                      String(d.seq),
                    ),
                  ),
                  h('td', {}, time(d.time)),
                  h('td', {}, d.stage ?? '–', d.partition === null ? '' : ` p${d.partition}`),
                  h('td', {}, d.handler ?? '–'),
                  h('td', {}, d.errorKind ?? '–'),
                  h('td', {}, d.error ?? '–'),
                  h('td', {}, d.events ? `${d.events[0].type} ${d.events[0].id}${d.events.length > 1 ? ` (+${d.events.length - 1})` : ''}` : '(malformed)'),
                );
              }),
            ),
          ),
        );
      }
    } catch (err) {
      show(list, h('p', { class: 'empty problem' }, `The dead letters cannot be read: ${(err as Error).message}`));
      shown = [];
    }
    updateButtons();
  };

  const open = async (seq: number) => {
    try {
      const d = await api<DeadLetterDetail>(`/api/dead-letters/${seq}`);
      const redriveOne = h('button', { type: 'button', disabled: !d.redrivable }, `Redrive ${d.seq}`);
      redriveOne.addEventListener('click', () => void redrive({ seqs: [d.seq] }, `Redrive dead letter ${d.seq} to ${d.originalSubject}?`));
      show(
        detail,
        h('h3', {}, `Dead letter ${d.seq}`),
        d.redrivable ? redriveOne : h('p', { class: 'problem' }, `Cannot be redriven: ${d.redriveProblem}`),
        h('h3', {}, 'Headers'),
        h(
          'table',
          {},
          h(
            'tbody',
            {},
            Object.entries(d.headers).flatMap(([k, vs]) => vs.map((v) => h('tr', {}, h('th', { scope: 'row' }, k), h('td', {}, v)))),
          ),
        ),
        h('h3', {}, d.body ? `Body: ${d.body.length} event${d.body.length === 1 ? '' : 's'}` : `Body: not a batch envelope (${d.malformed})`),
        h('pre', { tabindex: 0 }, d.body ? JSON.stringify(d.body, null, 2) : (d.bodyText ?? `base64: ${d.bodyBase64}`)),
      );
      redriveOne.focus();
    } catch (err) {
      show(detail, h('p', { class: 'empty problem' }, (err as ApiError).message));
    }
  };

  const redrive = async (body: unknown, question: string) => {
    if (!(await confirmDialog(question, 'Redrive'))) return;
    try {
      const r = await api<RedriveOutcome>('/api/dead-letters/redrive', { method: 'POST', body });
      const lines = [
        `Redrove ${r.redriven.length}${r.redriven.length ? ` (${r.redriven.map((x) => `${x.seq} → ${x.stream} #${x.streamSeq}`).join(', ')})` : ''}.`,
        ...r.refused.map((x) => `Refused ${x.seq}: ${x.problem}`),
      ];
      show(
        outcome,
        h(
          'div',
          { class: r.refused.length ? 'outcome bad' : 'outcome', 'data-redriven': r.redriven.length, 'data-refused': r.refused.length },
          lines.map((l) => h('div', {}, l)),
        ),
      );
      selected.clear();
      show(detail, h('p', { class: 'empty' }, 'Choose a dead letter to see its headers and body.'));
    } catch (err) {
      show(outcome, h('div', { class: 'outcome bad' }, `Redrive failed: ${(err as Error).message}`));
    }
    await load();
  };

  redriveSelected.addEventListener(
    'click',
    () => void redrive({ seqs: [...selected] }, `Redrive ${selected.size} dead letter${selected.size === 1 ? '' : 's'} to where they failed?`),
  );
  redriveAll.addEventListener('click', () => {
    const f = filter();
    const what = Object.entries(f)
      .filter(([, v]) => v)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
    void redrive({ all: true, filter: f }, `Redrive every dead letter${what ? ` matching ${what}` : ''} (${shown.length} or more)?`);
  });
  filters.addEventListener('submit', (e) => {
    e.preventDefault();
    void load();
  });
  void load();
  // New dead letters (or ones redriven elsewhere) show without a click, unless a choice is being made.
  let total: number | undefined;
  return {
    picture(p) {
      const now = p.deadLetters?.total;
      if (now === undefined || now === total) return;
      const first = total === undefined;
      total = now;
      if (!first && selected.size === 0 && !document.querySelector('dialog[open]')) void load();
    },
  };
}
