/** The pipeline as a graph: per service, events/s in and out, lag, retries, dead letters, and its instances with their health. */
import { ago, count, h, rate, show } from '../dom.js';
import type { View } from '../main.js';
import type { MeshPicture, ServiceView } from '../types.js';

const Columns: { key: string; title: string }[] = [
  { key: 'ingest', title: 'ingest' },
  { key: 'router', title: 'router' },
  { key: 'handlers', title: 'handlers' },
  { key: 'aggregator', title: 'aggregator' },
  { key: 'sink', title: 'sink' },
  { key: 'other', title: 'other services' },
];

/** A rate with its unit, or a dash when it is not known (a counter the service does not have). */
function perSecond(n: number | null, unit: string): string {
  return n === null ? '–' : `${rate(n)} ${unit}`;
}

function node(s: ServiceView): HTMLElement {
  const up = s.instances.filter((i) => i.status === 'up').length;
  const down = s.instances.length - up;
  const state = up === 0 ? 'none' : down > 0 ? 'degraded' : 'ok';
  const attr = (n: number | null) => (n === null ? '' : String(n));
  return h(
    'section',
    {
      class: `node ${state}`,
      'data-service': s.name,
      'data-in': attr(s.inRate),
      'data-out': attr(s.outRate),
      'data-lag': attr(s.lag),
      'data-dead-letters': attr(s.deadLetters),
      'aria-label': `${s.name}: ${up} instance${up === 1 ? '' : 's'} up${down > 0 ? `, ${down} down` : ''}`,
    },
    h('h3', {}, s.name, ' ', h('span', { class: 'badge ' + (up > 0 ? 'up' : 'down') }, up > 0 ? `● ${up} up` : '✕ none up')),
    h(
      'dl',
      { class: 'stats' },
      h('dt', {}, 'in'),
      h('dd', { 'data-field': 'in' }, perSecond(s.inRate, s.column === 'ingest' ? 'req/s' : '/s')),
      h('dt', {}, 'out'),
      h('dd', { 'data-field': 'out' }, perSecond(s.outRate, '/s')),
      h('dt', {}, 'lag'),
      h('dd', { 'data-field': 'lag' }, count(s.lag)),
      h('dt', {}, 'retries'),
      h('dd', {}, s.retrying === null && s.retryRate === null ? '–' : `${perSecond(s.retryRate, '/s')}${s.retrying ? ` · ${s.retrying} waiting` : ''}`),
      h('dt', {}, 'dead letters'),
      h(
        'dd',
        { 'data-field': 'dead-letters' },
        s.deadLetters ? h('a', { href: `#/dead-letters?stage=${s.name}` }, count(s.deadLetters)) : count(s.deadLetters),
      ),
    ),
    s.instances.length === 0
      ? h('p', { class: 'empty', style: 'padding:6px' }, 'no instance')
      : h(
          'ul',
          { class: 'instances', 'aria-label': `${s.name} instances` },
          s.instances.map((i) =>
            h(
              'li',
              { 'data-instance': i.id, 'data-status': i.status },
              h('span', { class: `badge ${i.status}` }, i.status === 'up' ? '● up' : '✕ down'),
              h('span', {}, i.id),
              h(
                'span',
                { class: 'muted' },
                i.status === 'down' ? `last seen ${ago(i.lastSeen)}` : i.partitions.length > 0 ? `p ${i.partitions.join(',')}` : '',
              ),
            ),
          ),
        ),
  );
}

export function overviewView(main: HTMLElement): View {
  const graph = h('div', { class: 'graph', 'aria-live': 'off' });
  const note = h('div', {});
  show(main, h('h2', {}, 'Overview'), note, graph);
  graph.appendChild(h('p', { class: 'empty' }, 'Reading the mesh…'));
  return {
    picture(p: MeshPicture) {
      if (!p.nats.connected) {
        show(note, h('p', { class: 'empty problem' }, 'NATS is down: nothing can be read until it is back. The console reconnects by itself.'));
      } else if (p.services.every((s) => s.instances.length === 0)) {
        show(note, h('p', { class: 'empty' }, 'No service answers service discovery yet. Start the mesh with npm start.'));
      } else if ((p.partitions ?? []).every((r) => !r.ackFloor) && p.services.every((s) => !s.inRate)) {
        show(
          note,
          h(
            'p',
            { class: 'empty' },
            'No events yet. Send one with POST /v1/events to ingest (see the README, "Try it"), or ',
            h('code', {}, "npx mesh send order.created '{…}'"),
            '.',
          ),
        );
      } else show(note);
      show(
        graph,
        Columns.map((c) => {
          const members = p.services.filter((s) => s.column === c.key);
          if (members.length === 0) return null;
          return h('div', { class: 'column', 'data-column': c.key, 'aria-label': c.title }, members.map(node));
        }),
      );
    },
  };
}
