// Events: the explorer. Filters, a table of one page of events, cursor
// paging, a detail panel with pivots, live following, and downloads.
import { h, replace, when, int, usd, ms, spinner, problem, empty, copyButton } from './dom.js';
import { get, stream, download } from './api.js';
import { filterBar, apiFilter, withFilter, range, hideBookkeeping } from './filters.js';

// PAGE_KEYS are the events page's own state beside the filters.
const PAGE_KEYS = ['cursor', 'limit', 'event', 'event_org', 'live', 'all', 'sort'];
const LIVE_MAX = 200;

export async function render(ctx) {
  const { q, session, main, signal } = ctx;
  // As `agenttrail query` does, the list leaves out what the trail records
  // about itself (its audit of these very reads, heartbeats) unless asked.
  const all = q.get('all') === '1';
  const filter = all ? apiFilter(q) : hideBookkeeping(apiFilter(q));
  const params = new URLSearchParams(filter);
  const limit = Math.min(200, Math.max(1, Number(q.get('limit')) || 50));
  params.set('limit', String(limit));
  // One task reads in the order it happened: a pivot to a trace or a
  // session asks for sort=time; any other listing is newest first.
  const sort = q.get('sort') === 'time' ? 'time' : null;
  if (sort) params.set('sort', sort);
  if (q.get('cursor')) params.set('cursor', q.get('cursor'));
  // A listing of one task shows which trace and session each event is in.
  const task = filter.has('trace_id') || filter.has('session_id');
  const live = q.get('live') === '1';

  const nav = (changes) => {
    const next = new URLSearchParams(q);
    for (const [k, v] of Object.entries(changes)) { if (v === null) next.delete(k); else next.set(k, v); }
    return next;
  };
  const setQ = (changes, opts) => ctx.go(nav(changes), opts);

  const count = h('span', { class: 'count', id: 'match-count' }, '');
  const liveBox = h('input', { type: 'checkbox', id: 'live', checked: live });
  liveBox.addEventListener('change', () => setQ({ live: liveBox.checked ? '1' : null, cursor: null }));
  const oldestBox = h('input', { type: 'checkbox', id: 'oldest-first', checked: sort === 'time' });
  oldestBox.addEventListener('change', () => setQ({ sort: oldestBox.checked ? 'time' : null, cursor: null }));
  const allBox = h('input', { type: 'checkbox', id: 'all-sources', checked: all });
  allBox.addEventListener('change', () => setQ({ all: allBox.checked ? '1' : null, cursor: null }));
  const dlStatus = h('span', { role: 'status', class: 'dl-status' });
  const downloads = h('div', { class: 'downloads', role: 'group', 'aria-label': 'Download the events of this filter' }, 'Download: ',
    ['ndjson', 'csv', 'ocsf', 'cef'].map((f) => h('button', {
      type: 'button', class: 'link', 'data-format': f,
      onclick: async () => {
        dlStatus.textContent = `Preparing ${f.toUpperCase()}…`;
        try { await download(filter, f); dlStatus.textContent = ''; } catch (err) { dlStatus.textContent = err.message; }
      },
    }, f.toUpperCase())), dlStatus);

  const tableWrap = h('div', { class: 'table-wrap' }, spinner('Loading events…'));
  const pager = h('nav', { class: 'pager', 'aria-label': 'Pages of events' });
  const panel = h('aside', { class: 'panel', id: 'detail', 'aria-label': 'Event detail', hidden: true });
  replace(main,
    h('h1', {}, 'Events'),
    filterBar(q, session, ctx.go, { keep: ['limit', 'live', 'all', 'sort'] }),
    h('div', { class: 'toolbar' }, count,
      h('label', { class: 'live', for: 'live' }, liveBox, ' Live'),
      h('label', { class: 'oldest-first', for: 'oldest-first' }, oldestBox, ' Oldest first'),
      h('label', { class: 'all-sources', for: 'all-sources', title: "the trail's audit of its own reads and writes, and agents' heartbeats" }, allBox, ' Include audit and heartbeats'),
      downloads),
    tableWrap, pager, panel);

  // The count of matching events, from the same filter (not the page).
  // The count comes when it comes: on a large store without rollups for
  // the filter it takes longer than the page of rows, which it must not
  // hold up.
  get('/v1/aggregate', withBy(filter, 'result'), signal).then((a) => {
    const n = a.buckets.reduce((t, b) => t + b.count, 0);
    count.textContent = `${int(n)} event${n === 1 ? '' : 's'} in ${range(q).words}`;
    count.dataset.count = String(n);
  }).catch(() => {});

  const page = await get('/v1/events', params, signal);
  let rows = page.events;
  const tbody = h('tbody');
  let selected = -1;
  const select = (i, focus = true) => {
    const trs = tbody.querySelectorAll('tr');
    if (!trs.length) return;
    selected = Math.max(0, Math.min(trs.length - 1, i));
    trs.forEach((tr, j) => tr.setAttribute('aria-selected', j === selected ? 'true' : 'false'));
    if (focus) trs[selected].focus();
  };
  const openRow = (ev) => setQ({ event: ev.id, event_org: ev.org || null });
  const addRow = (ev, atTop) => {
    const tr = row(ev, openRow, task);
    if (atTop) tbody.prepend(tr); else tbody.append(tr);
  };
  rows.forEach((ev) => addRow(ev, false));
  if (!rows.length && !live) {
    replace(tableWrap, empty(`No events match these filters in ${range(q).words}.`));
  } else {
    replace(tableWrap, table(tbody, task));
  }
  replace(pager,
    q.get('cursor') ? h('a', { href: `?${nav({ cursor: null, event: null, event_org: null })}`, 'data-nav': true }, '« First page') : null,
    page.next_cursor ? h('a', { href: `?${nav({ cursor: page.next_cursor, event: null, event_org: null })}`, 'data-nav': true, rel: 'next', id: 'next-page' }, 'Next page »') : null);

  ctx.keys((e) => {
    if (e.key === 'j') { e.preventDefault(); select(selected + 1); }
    else if (e.key === 'k') { e.preventDefault(); select(selected - 1); }
    else if (e.key === 'Enter' && selected >= 0 && document.activeElement && document.activeElement.closest('tbody') === tbody) {
      e.preventDefault();
      document.activeElement.click();
    } else if (e.key === 'Escape' && q.get('event')) { e.preventDefault(); setQ({ event: null, event_org: null }); }
  });
  tbody.addEventListener('focusin', (e) => {
    const tr = e.target.closest('tr');
    if (tr) select([...tbody.children].indexOf(tr), false);
  });

  const detail = q.get('event') ? showDetail(ctx, panel, q, () => setQ({ event: null, event_org: null })) : null;

  if (live) {
    if (!rows.length) replace(tableWrap, table(tbody, task));
    const sp = new URLSearchParams(filter);
    sp.delete('since');
    sp.delete('until');
    const status = h('span', { class: 'live-status', role: 'status' }, 'Following new events…');
    count.after(status);
    stream(sp, (ev) => {
      // New events join at the newest end of the list.
      addRow(ev, sort !== 'time');
      while (tbody.children.length > LIVE_MAX) (sort === 'time' ? tbody.firstChild : tbody.lastChild).remove();
    }, signal).catch((err) => {
      if (!signal.aborted) status.textContent = `Live stopped: ${err.message}`;
    });
  }
  await detail;
}

function withBy(filter, by) {
  const p = new URLSearchParams(filter);
  p.set('by', by);
  return p;
}

const COLUMNS = ['Time', 'Actor', 'Source', 'Action', 'Resource', 'Result', 'Status', 'Duration', 'Cost'];
const TASK_COLUMNS = ['Session', 'Trace', 'Span', 'Parent'];

function table(tbody, task) {
  const cols = task ? [...COLUMNS, ...TASK_COLUMNS] : COLUMNS;
  return h('table', { class: task ? 'events task' : 'events', 'aria-label': 'Events' },
    h('thead', {}, h('tr', {}, cols.map((c) => h('th', { scope: 'col' }, c)))), tbody);
}

// shortID shows the first 8 digits of a trace or span id, the whole id in
// its tooltip.
function shortID(id) {
  return id ? h('span', { class: 'id', title: id }, id.slice(0, 8)) : '';
}

function costOf(ev) {
  const c = ev.metadata && ev.metadata.llm && ev.metadata.llm.cost_usd;
  return typeof c === 'number' ? usd(c) : '';
}

function resourceOf(ev) {
  return [ev.resource_type, ev.resource_id].filter(Boolean).join(' ');
}

function row(ev, open, task) {
  const tr = h('tr', { tabindex: 0, class: `r-${ev.result}`, dataset: { id: ev.id }, 'aria-selected': 'false' },
    h('td', {}, when(ev.time)),
    h('td', { class: 'actor' }, ev.actor_name || ev.actor_id, ev.actor_name ? h('span', { class: 'sub' }, ev.actor_id) : null),
    h('td', {}, ev.source),
    h('td', { class: 'action' }, ev.action),
    h('td', { class: 'resource' }, resourceOf(ev)),
    h('td', {}, h('span', { class: `result ${ev.result}` }, ev.result)),
    h('td', { class: 'num' }, ev.status_code ? String(ev.status_code) : ''),
    h('td', { class: 'num' }, ms(ev.duration_ms)),
    h('td', { class: 'num' }, costOf(ev)),
    task ? [h('td', { class: 'session' }, ev.session_id || ''), h('td', { class: 'trace' }, shortID(ev.trace_id)),
      h('td', { class: 'span' }, shortID(ev.span_id)), h('td', { class: 'span' }, shortID(ev.parent_span_id))] : null);
  tr.addEventListener('click', () => open(ev));
  return tr;
}

const FIELDS = ['id', 'time', 'received_at', 'seq', 'duration_ms', 'actor_type', 'actor_id', 'actor_name', 'source', 'action',
  'resource_type', 'resource_id', 'result', 'status_code', 'description', 'org', 'project', 'session_id', 'trace_id', 'span_id',
  'parent_span_id', 'producer_id', 'producer_seq'];

async function showDetail(ctx, panel, q, close) {
  panel.hidden = false;
  replace(panel, spinner('Loading the event…'));
  const p = new URLSearchParams();
  if (q.get('event_org')) p.set('org', q.get('event_org'));
  let ev;
  try {
    ev = await get(`/v1/events/${encodeURIComponent(q.get('event'))}`, p, ctx.signal);
  } catch (err) {
    if (ctx.signal.aborted) return;
    replace(panel, closeButton(close), problem(err));
    return;
  }
  const t = Date.parse(ev.time);
  const around = [['since', new Date(t - 5 * 60e3).toISOString()], ['until', new Date(t + 5 * 60e3).toISOString()]];
  const pivot = (label, pairs, { id, inOrder } = {}) => {
    const p = withFilter(new URLSearchParams(), pairs);
    if (inOrder) p.set('sort', 'time');
    return h('li', {}, h('a', { href: `/events?${p}`, 'data-nav': true, id }, label));
  };
  // A task's events lie around this one: a trace within a day of it, a
  // session (a conversation may go on for days) within a week.
  const within = (days) => [['since', new Date(t - days * 864e5).toISOString()], ['until', new Date(t + days * 864e5).toISOString()]];
  const dl = h('dl', { class: 'fields' });
  for (const f of FIELDS) {
    if (ev[f] === undefined || ev[f] === null || ev[f] === '') continue;
    const text = String(ev[f]);
    dl.append(h('dt', {}, f), h('dd', { dataset: { field: f } }, f === 'time' || f === 'received_at' ? when(text) : text, ' ', copyButton(text, `Copy ${f}`)));
  }
  const json = JSON.stringify(ev, null, 2);
  replace(panel,
    closeButton(close),
    h('h2', { id: 'detail-title', tabindex: -1 }, ev.action),
    h('ul', { class: 'pivots', 'aria-label': 'Pivots' },
      pivot('This actor', [['actor_id', ev.actor_id], ['since', '7d']]),
      ev.resource_id ? pivot('This resource', [['resource_type', ev.resource_type || null], ['resource_id', ev.resource_id], ['since', '7d']]) : null,
      ev.trace_id ? pivot('This trace', [['trace_id', ev.trace_id], ...within(1)], { id: 'pivot-trace', inOrder: true }) : null,
      ev.session_id ? pivot('This session', [['session_id', ev.session_id], ...within(7)], { id: 'pivot-session', inOrder: true }) : null,
      pivot('± 5 minutes around this event', around)),
    dl,
    ev.metadata ? [h('h3', {}, 'Metadata ', copyButton(JSON.stringify(ev.metadata, null, 2), 'Copy metadata')),
      h('pre', { class: 'metadata' }, JSON.stringify(ev.metadata, null, 2))] : null,
    h('details', {}, h('summary', {}, 'Raw JSON ', copyButton(json, 'Copy JSON')), h('pre', {}, json)));
  panel.querySelector('#detail-title').focus();
}

function closeButton(close) {
  return h('button', { type: 'button', class: 'close', 'aria-label': 'Close the detail panel', onclick: close }, '×');
}
