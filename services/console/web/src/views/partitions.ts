/** Per stage, each partition's owner, lag, ack floor and retrying envelopes, with ownership moves as they happen. */
import { count, h, show, time } from '../dom.js';
import type { View } from '../main.js';
import type { MeshPicture, PartitionRow } from '../types.js';

const RecentMs = 15_000;

export function partitionsView(main: HTMLElement): View {
  const body = h('div', {});
  const stageSelect = h(
    'select',
    { id: 'partition-stage' },
    h('option', { value: '' }, 'all stages'),
    ['router', 'processor', 'aggregator'].map((s) => h('option', { value: s }, s)),
  );
  let last: MeshPicture | undefined;
  stageSelect.addEventListener('change', () => last && draw(last));
  show(main, h('h2', {}, 'Partitions'), h('div', { class: 'toolbar' }, h('label', { for: 'partition-stage' }, 'Stage', stageSelect)), body);
  body.appendChild(h('p', { class: 'empty' }, 'Reading the partitions…'));

  const draw = (p: MeshPicture) => {
    last = p;
    if (!p.partitions) {
      show(body, h('p', { class: 'empty problem' }, p.problems.find((x) => x.startsWith('partitions')) ?? 'The partitions cannot be read now.'));
      return;
    }
    const recent = new Map<string, string>();
    for (const m of p.moves) if (Date.now() - new Date(m.at).getTime() < RecentMs) recent.set(`${m.stage}/${m.partition}`, m.at);
    const stages = [...new Set(p.partitions.map((r) => r.stage))].filter((s) => !stageSelect.value || s === stageSelect.value);
    const row = (r: PartitionRow) =>
      h(
        'tr',
        { class: recent.has(`${r.stage}/${r.partition}`) ? 'moved' : '', 'data-stage': r.stage, 'data-partition': r.partition, 'data-owner': r.owner ?? '' },
        h('td', { class: 'num' }, r.partition),
        h('td', {}, r.owner ?? h('em', {}, r.exists ? 'no owner' : 'no consumer yet'), recent.has(`${r.stage}/${r.partition}`) ? ' (moved)' : ''),
        h('td', { class: 'num' }, count(r.lag)),
        h('td', { class: 'num' }, count(r.pending)),
        h('td', { class: 'num' }, count(r.ackPending)),
        h('td', { class: 'num' }, count(r.ackFloor)),
        h('td', { class: 'num' }, count(r.retrying)),
      );
    const moves = p.moves
      .filter((m) => !stageSelect.value || m.stage === stageSelect.value)
      .slice(-20)
      .reverse();
    show(
      body,
      stages.map((stage) =>
        h(
          'section',
          { 'data-stage-table': stage },
          h('h3', {}, stage),
          h(
            'div',
            { class: 'scroll' },
            h(
              'table',
              {},
              h(
                'thead',
                {},
                h(
                  'tr',
                  {},
                  ['partition', 'owner', 'lag', 'pending', 'ack pending', 'ack floor', 'retrying'].map((c, i) =>
                    h('th', { scope: 'col', class: i === 1 ? '' : 'num' }, c),
                  ),
                ),
              ),
              h('tbody', {}, p.partitions!.filter((r) => r.stage === stage).map(row)),
            ),
          ),
        ),
      ),
      h('h3', {}, 'Ownership moves'),
      moves.length === 0
        ? h('p', { class: 'empty' }, 'No partition has changed owner since the console started.')
        : h(
            'ul',
            { class: 'log', 'aria-label': 'Ownership moves' },
            moves.map((m) =>
              h('li', { 'data-move': `${m.stage}/${m.partition}` }, `${time(m.at)}  ${m.stage} p${m.partition}: ${m.from ?? '(none)'} → ${m.to ?? '(none)'}`),
            ),
          ),
    );
  };
  return { picture: draw };
}
