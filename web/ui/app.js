// The console's shell: sign-in, the page router, the gap banner and the
// keyboard. A page renders from the URL (path and query) alone, so reload,
// back and forward, and shared links show exactly what was seen.
import { h, replace, spinner, problem, int } from './dom.js';
import { token, setToken, clearToken, get, request, SESSION_ENDED } from './api.js';
import { apiFilter, range } from './filters.js';
import * as events from './events.js';
import * as overview from './overview.js';
import * as cost from './cost.js';
import * as gaps from './gaps.js';
import * as tokens from './tokens.js';

const PAGES = [
  { path: '/events', title: 'Events', mod: events },
  { path: '/overview', title: 'Overview', mod: overview },
  { path: '/cost', title: 'Cost', mod: cost },
  { path: '/gaps', title: 'Gaps', mod: gaps },
  { path: '/tokens', title: 'Tokens', mod: tokens, admin: true },
];

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const who = document.getElementById('who');
const banner = document.getElementById('banner');

let session = null; // GET /v1/session of the current token
let current = null; // {controller, keys} of the rendered page
let signInNote = ''; // why the sign-in page is shown

// go shows the page at path with query params, as a new history entry
// unless replace is set.
export function go(path, params, { replace: rep = false } = {}) {
  const qs = params && [...params].length ? `?${params}` : '';
  const url = path + qs;
  if (rep) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  render();
}

function pageOf(path) {
  if (path === '/' || path === '') return PAGES[0];
  return PAGES.find((p) => p.path === path);
}

async function render() {
  if (current) current.controller.abort();
  replace(banner);
  const controller = new AbortController();
  current = { controller, keys: null };
  main.setAttribute('aria-busy', 'true');
  try {
    await show(controller);
  } finally {
    if (current.controller === controller) main.setAttribute('aria-busy', 'false');
  }
}

async function show(controller) {
  const hash = new URLSearchParams(location.hash.slice(1));
  if (hash.has('login')) {
    // The code came in the fragment, which no server saw; drop it from the
    // address bar and the history before anything else.
    history.replaceState(null, '', location.pathname + location.search);
    await exchange(hash.get('login'));
  }
  if (!token()) return signIn();
  if (!session) session = cachedSession();
  if (!session) {
    replace(main, spinner('Signing in…'));
    try {
      session = await get('/v1/session');
      sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
    } catch (err) {
      if (!token()) return; // the 401 handler shows sign-in
      return replace(main, problem(err));
    }
  }
  const page = pageOf(location.pathname);
  renderChrome(page);
  if (!page || (page.admin && session.role !== 'admin')) {
    document.title = 'Not found · agenttrail';
    return replace(main, h('h1', {}, 'Not found'), h('p', {}, page ? 'This page needs an admin token.' : 'There is no such page. '), h('a', { href: '/events', 'data-nav': true }, 'Go to Events'));
  }
  document.title = `${page.title} · agenttrail`;
  const q = new URLSearchParams(location.search);
  replace(main, spinner());
  const ctx = {
    q, session, signal: controller.signal, main,
    go: (params, opts) => go(location.pathname === '/' ? '/events' : location.pathname, params, opts),
    open: (path, params) => go(path, params),
    keys: (fn) => { current.keys = fn; },
  };
  try {
    await page.mod.render(ctx);
  } catch (err) {
    if (err.name === 'AbortError' || controller.signal.aborted) return;
    if (!token()) return;
    replace(main, h('h1', {}, page.title), problem(err));
  } finally {
    // After the page's own data: finding gaps reads every event of the
    // range, and must not hold up what was asked for.
    if (!controller.signal.aborted) gapBanner(q, controller.signal);
  }
}

// The session's description is kept beside its token for this tab, so a
// reload asks the API for data at once; a revoked or expired token is still
// refused by the first call.
const SESSION_KEY = 'agenttrail.session';
function cachedSession() {
  try {
    return JSON.parse(sessionStorage.getItem(SESSION_KEY) || 'null');
  } catch {
    return null;
  }
}

function renderChrome(page) {
  replace(nav, h('ul', {}, PAGES.filter((p) => !p.admin || session.role === 'admin').map((p) =>
    h('li', {}, h('a', { href: p.path + keepFilters(p), 'data-nav': true, 'aria-current': p === page ? 'page' : null }, p.title)))));
  replace(who,
    h('span', { class: 'who-name', title: `role ${session.role}, org ${session.org}` }, `${session.name} · ${session.role}${session.org === '*' ? '' : ` · ${session.org}`}`),
    h('button', { type: 'button', class: 'link', onclick: () => showHelp() , 'aria-label': 'Keyboard shortcuts' }, '?'),
    h('button', { type: 'button', class: 'link', onclick: signOut }, 'Sign out'));
}

// keepFilters carries the time range and filters from page to page.
function keepFilters(p) {
  if (p.path === '/tokens') return '';
  const q = new URLSearchParams(location.search);
  const f = new URLSearchParams();
  for (const [k, v] of apiFilter(q)) f.append(k, v);
  if (f.get('since') === '24h' && !f.has('until')) f.delete('since');
  return [...f].length ? `?${f}` : '';
}

// gapBanner warns, on every page, when the selected range has gaps.
async function gapBanner(q, signal) {
  banner.setAttribute('aria-busy', 'true');
  try {
    await showGaps(q, signal);
  } finally {
    if (!signal.aborted) banner.setAttribute('aria-busy', 'false');
  }
}

async function showGaps(q, signal) {
  const p = new URLSearchParams();
  const f = apiFilter(q);
  for (const k of ['since', 'until', 'org', 'project']) for (const v of f.getAll(k)) p.append(k, v);
  try {
    const g = await get('/v1/gaps', p, signal);
    const n = g.heartbeats.length + g.sequences.length;
    if (!n) return;
    const link = new URLSearchParams(p);
    if (link.get('since') === '24h' && !link.has('until')) link.delete('since');
    replace(banner, h('div', { class: 'banner warn' },
      h('strong', {}, 'Gaps in this range: '),
      `${int(g.heartbeats.length)} heartbeat gap${g.heartbeats.length === 1 ? '' : 's'} and ${int(g.sequences.length)} sequence gap${g.sequences.length === 1 ? '' : 's'} in ${range(q).words}; some events may be missing. `,
      h('a', { href: `/gaps${[...link].length ? `?${link}` : ''}`, 'data-nav': true }, 'See the gaps')));
  } catch { /* the page shows its own errors */ }
}

async function exchange(code) {
  clearToken();
  session = null;
  try {
    const s = await request('POST', '/v1/session', { body: { code } });
    setToken(s.token);
  } catch (err) {
    signInNote = `This sign-in link did not work: ${err.message}`;
  }
}

function signIn() {
  session = null;
  renderChromeSignedOut();
  document.title = 'Sign in · agenttrail';
  const input = h('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'off', required: true, spellcheck: 'false', placeholder: 'at_…' });
  const msg = h('div', { 'aria-live': 'polite' }, signInNote ? h('p', { class: 'error', role: 'alert' }, signInNote) : null);
  signInNote = '';
  const form = h('form', { class: 'signin', 'aria-labelledby': 'signin-title' },
    h('h1', { id: 'signin-title' }, 'Sign in to agenttrail'),
    msg,
    h('p', {}, 'Open a sign-in link from ', h('code', {}, 'agenttrail console'), ' run on the server’s machine, or paste a read or admin token. The token is kept in this tab only and is forgotten when it closes.'),
    h('label', { for: 'token' }, 'Token'), input,
    h('button', { type: 'submit', class: 'primary' }, 'Sign in'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    setToken(input.value.trim());
    try {
      session = await get('/v1/session');
    } catch (err) {
      clearToken();
      session = null;
      replace(msg, h('p', { class: 'error', role: 'alert' }, err.message));
      return;
    }
    render();
  });
  replace(main, form);
  input.focus();
}

function renderChromeSignedOut() {
  replace(nav);
  replace(who);
  replace(banner);
}

async function signOut() {
  try { await request('DELETE', '/v1/session'); } catch { /* signed out either way */ }
  clearToken();
  session = null;
  signInNote = '';
  go('/events', null, { replace: true });
}

window.addEventListener(SESSION_ENDED, (e) => {
  session = null;
  signInNote = `Your session ended: ${e.detail}`;
  signIn();
});

// Links marked data-nav stay in the console without a page load.
document.addEventListener('click', (e) => {
  const a = e.target.closest && e.target.closest('a[data-nav]');
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin) return;
  e.preventDefault();
  go(url.pathname, url.searchParams);
});

window.addEventListener('popstate', render);

const SHORTCUTS = [['/', 'focus the search'], ['j / k', 'next / previous row'], ['Enter', 'open the selected row'], ['Esc', 'close the panel or dialog'], ['?', 'show these shortcuts']];

function showHelp() {
  let d = document.getElementById('help');
  if (!d) {
    d = h('dialog', { id: 'help', 'aria-labelledby': 'help-title' },
      h('h2', { id: 'help-title' }, 'Keyboard shortcuts'),
      h('dl', { class: 'keys' }, SHORTCUTS.map(([k, v]) => [h('dt', {}, h('kbd', {}, k)), h('dd', {}, v)])),
      h('form', { method: 'dialog' }, h('button', { class: 'primary' }, 'Close')));
    document.body.append(d);
  }
  if (!d.open) d.showModal();
}

document.addEventListener('keydown', (e) => {
  const t = e.target;
  const typing = t && (t.tagName === 'INPUT' || t.tagName === 'TEXTAREA' || t.tagName === 'SELECT' || t.isContentEditable);
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  if (typing) {
    if (e.key === 'Escape') t.blur();
    return;
  }
  if (e.key === '/') {
    const q = document.getElementById('f-q');
    if (q) { e.preventDefault(); q.focus(); q.select(); }
    return;
  }
  if (e.key === '?') { e.preventDefault(); showHelp(); return; }
  if (current && current.keys) current.keys(e);
});

render();
