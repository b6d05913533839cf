/**
 * The effective route table: the handlers' declared types and the
 * operators' rules. A rule is checked by the console with the router's own
 * parser as it is typed, and stored only when the router would take it.
 */
import { api } from '../api.js';
import { confirmDialog, h, show } from '../dom.js';
import type { View } from '../main.js';
import type { RouteEntry } from '../types.js';

const Example = '{\n  "match": "order.*",\n  "to": ["orders"]\n}';

export function routesView(main: HTMLElement): View {
  const table = h('div', { class: 'scroll' }, h('p', { class: 'empty' }, 'Reading the route table…'));
  const name = h('input', { id: 'rule-name', name: 'name', required: true, pattern: '[A-Za-z0-9_-]{1,64}', autocomplete: 'off' });
  const rule = h('textarea', { id: 'rule-json', name: 'rule', spellcheck: 'false', 'aria-describedby': 'rule-check' });
  rule.value = Example;
  const check = h('p', { id: 'rule-check', 'aria-live': 'polite' });
  const save = h('button', { type: 'submit', id: 'rule-save', disabled: true }, 'Save rule');
  const outcome = h('div', { 'aria-live': 'polite', id: 'rule-outcome' });
  const form = h(
    'form',
    { 'aria-label': 'Add or edit a rule' },
    h('h3', {}, 'Add or edit a rule'),
    h(
      'p',
      { class: 'muted' },
      'match: an event type pattern (* one token, > the rest); to: handler names, or {"handler", "weight"} for a canary split; where: attribute values; priority: higher first; drop: true to drop.',
    ),
    h('label', { for: 'rule-name' }, 'Name (letters, digits, _ and -)', name),
    h('label', { for: 'rule-json' }, 'Rule (JSON)', rule),
    check,
    h('div', { class: 'toolbar' }, save, h('button', { type: 'reset', class: 'secondary' }, 'Clear')),
  );
  show(main, h('h2', {}, 'Routes'), outcome, h('div', { class: 'split' }, table, form));

  let checking = 0;
  let timer: number | undefined;
  const validate = async () => {
    const mine = ++checking;
    let value: unknown;
    try {
      value = JSON.parse(rule.value);
    } catch (err) {
      check.className = 'problem';
      check.textContent = `Not JSON: ${(err as Error).message}`;
      save.disabled = true;
      return;
    }
    if (name.value.trim() === '') {
      check.className = '';
      check.textContent = 'Give the rule a name to check it.';
      save.disabled = true;
      return;
    }
    try {
      const r = await api<{ ok: boolean; problem?: string }>('/api/routes/check', { method: 'POST', body: { name: name.value.trim(), rule: value } });
      if (mine !== checking) return;
      check.className = r.ok ? '' : 'problem';
      check.textContent = r.ok ? '✓ The router accepts this rule.' : `✕ ${r.problem}`;
      save.disabled = !r.ok;
    } catch (err) {
      check.className = 'problem';
      check.textContent = `Cannot check the rule: ${(err as Error).message}`;
      save.disabled = true;
    }
  };
  const later = () => {
    window.clearTimeout(timer);
    save.disabled = true;
    timer = window.setTimeout(() => void validate(), 250);
  };
  name.addEventListener('input', later);
  rule.addEventListener('input', later);
  form.addEventListener('reset', () => {
    window.setTimeout(() => {
      rule.value = Example;
      later();
    });
  });
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    void (async () => {
      try {
        const r = await api<{ key: string; revision: number }>(`/api/routes/${encodeURIComponent(name.value.trim())}`, {
          method: 'PUT',
          body: JSON.parse(rule.value),
        });
        show(outcome, h('div', { class: 'outcome', 'data-stored': r.key }, `Stored ${r.key} (revision ${r.revision}); the routers apply it now.`));
        await load();
      } catch (err) {
        show(outcome, h('div', { class: 'outcome bad' }, `Not stored: ${(err as Error).message}`));
      }
    })();
  });

  const load = async () => {
    try {
      const { routes } = await api<{ routes: RouteEntry[] }>('/api/routes');
      if (routes.length === 0) {
        show(table, h('p', { class: 'empty' }, 'The route table is empty: no service has declared handlers yet and there are no rules.'));
        return;
      }
      show(
        table,
        h(
          'table',
          { 'aria-label': 'Route table' },
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              ['kind', 'name', 'state', 'value', ''].map((c) => h('th', { scope: 'col' }, c)),
            ),
          ),
          h(
            'tbody',
            {},
            routes.map((r) => {
              const actions =
                r.kind === 'rule'
                  ? [
                      h(
                        'button',
                        {
                          type: 'button',
                          class: 'secondary',
                          'aria-label': `edit rule ${r.name}`,
                          onclick: () => {
                            name.value = r.name;
                            rule.value = JSON.stringify(r.value, null, 2);
                            later();
                            rule.focus();
                          },
                        },
                        'Edit',
                      ),
                      ' ',
                      h(
                        'button',
                        {
                          type: 'button',
                          class: 'danger',
                          'aria-label': `delete rule ${r.name}`,
                          onclick: () =>
                            void (async () => {
                              if (!(await confirmDialog(`Delete rule ${r.name}? The routers stop applying it at once.`, 'Delete'))) return;
                              try {
                                await api(`/api/routes/${encodeURIComponent(r.name)}`, { method: 'DELETE' });
                                show(outcome, h('div', { class: 'outcome' }, `Deleted rule ${r.name}.`));
                              } catch (err) {
                                show(outcome, h('div', { class: 'outcome bad' }, `Not deleted: ${(err as Error).message}`));
                              }
                              await load();
                            })(),
                        },
                        'Delete',
                      ),
                    ]
                  : [];
              return h(
                'tr',
                { 'data-route': `${r.kind}.${r.name}` },
                h('td', {}, r.kind === 'handler' ? 'handler default' : 'rule'),
                h('td', {}, r.name),
                h('td', { class: r.problems.length ? 'problem' : '' }, r.problems.length ? `ignored: ${r.problems.join('; ')}` : 'in use'),
                h('td', {}, h('code', {}, JSON.stringify(r.value))),
                h('td', {}, actions),
              );
            }),
          ),
        ),
      );
    } catch (err) {
      show(table, h('p', { class: 'empty problem' }, `The route table cannot be read: ${(err as Error).message}`));
    }
  };
  void load();
  void validate();
  return {};
}
