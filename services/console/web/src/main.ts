/**
 * The console's page: a hash router over six views, the live picture
 * shared by the views that draw it, the API key prompt, and one banner for
 * what is wrong (NATS down, the console away, a key needed).
 */
import { api, apiKey, follow, setApiKey, setOnUnauthorized, type StreamControl } from './api.js';
import { h, show } from './dom.js';
import type { MeshPicture } from './types.js';
import { overviewView } from './views/overview.js';
import { partitionsView } from './views/partitions.js';
import { deadLettersView } from './views/dead-letters.js';
import { routesView } from './views/routes.js';
import { aggregatesView } from './views/aggregates.js';
import { eventsView } from './views/events.js';

/** A view draws into `main`; `picture` is called with every new picture; `leave` stops what it started. */
export interface View {
  picture?(p: MeshPicture): void;
  leave?(): void;
}
export type ViewFactory = (main: HTMLElement) => View;

const views: Record<string, { title: string; make: ViewFactory }> = {
  overview: { title: 'Overview', make: overviewView },
  partitions: { title: 'Partitions', make: partitionsView },
  'dead-letters': { title: 'Dead letters', make: deadLettersView },
  routes: { title: 'Routes', make: routesView },
  aggregates: { title: 'Aggregates', make: aggregatesView },
  events: { title: 'Events', make: eventsView },
};

const main = document.getElementById('main')!;
const banner = document.getElementById('banner')!;
const status = document.getElementById('status')!;
let current: View | undefined;
let latest: MeshPicture | undefined;
let stream: StreamControl | undefined;
let needsKey = false;

function setBanner(text: string | null, kind: 'warn' | 'error' = 'warn'): void {
  banner.hidden = text === null;
  banner.className = kind === 'error' ? 'error' : '';
  banner.textContent = text ?? '';
}

function describe(p: MeshPicture): void {
  if (!p.nats.connected) setBanner(`NATS is down: ${p.problems[0] ?? p.nats.server}`, 'error');
  else if (p.problems.length > 0) setBanner(`Part of the mesh cannot be read: ${p.problems.join('; ')}`);
  else setBanner(null);
  status.textContent = `${p.nats.connected ? 'live' : 'NATS down'} · updated ${new Date(p.at).toLocaleTimeString('en-GB')}`;
  status.dataset.at = p.at;
}

function keyForm(reason: string): void {
  current?.leave?.();
  current = undefined;
  stream?.stop();
  stream = undefined;
  const input = h('input', { type: 'password', id: 'api-key', autocomplete: 'off', required: true, 'aria-describedby': 'key-why' });
  const form = h(
    'form',
    { class: 'filters', 'aria-label': 'API key' },
    h('label', { for: 'api-key' }, 'API key with the admin scope', input),
    h('button', { type: 'submit' }, 'Use this key'),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    setApiKey(input.value.trim());
    void api('/api/whoami').then(
      () => {
        needsKey = false;
        setBanner(null);
        start();
      },
      (err: Error) => {
        setApiKey(null);
        setBanner(`That key is refused: ${err.message}`, 'error');
      },
    );
  });
  show(main, h('h2', {}, 'This console needs an API key'), h('p', { id: 'key-why' }, reason), form);
  input.focus();
}

function route(): void {
  if (needsKey) return;
  const name = location.hash.replace(/^#\/?/, '').split('?')[0] || 'overview';
  const view = views[name] ?? views.overview;
  for (const a of document.querySelectorAll('header nav a')) {
    if (a.getAttribute('href') === `#/${name}`) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  current?.leave?.();
  main.replaceChildren();
  document.title = `${view.title} · mesh console`;
  current = view.make(main);
  if (latest) current.picture?.(latest);
}

function start(): void {
  stream?.stop();
  stream = follow(
    '/api/picture/events',
    {
      picture: (data) => {
        latest = data as MeshPicture;
        describe(latest);
        current?.picture?.(latest);
      },
    },
    (state, why) => {
      if (state === 'retrying') {
        setBanner(`The console does not answer (${why}); retrying every second`, 'error');
        status.textContent = 'reconnecting…';
      }
    },
  );
  route();
}

setOnUnauthorized((message) => {
  needsKey = true;
  setApiKey(null);
  keyForm(`The console refused the request: ${message}. Give a key with the admin scope (mesh apikey create --scopes admin).`);
});

window.addEventListener('hashchange', route);
void api<{ apiKeys: boolean }>('/api/session').then(
  (s) => {
    if (s.apiKeys && !apiKey()) {
      needsKey = true;
      keyForm('API keys are on: the console shows and changes the mesh only for a key with the admin scope. The key stays in this tab.');
    } else start();
  },
  (err: Error) => setBanner(`The console does not answer: ${err.message}`, 'error'),
);
