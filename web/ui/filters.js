// The filter bar, shared by Events, Overview, Cost and Gaps. The page's URL
// query holds the filters under the API's own parameter names, so what the
// page asks the API is its query string, less the page's own keys.
import { h } from './dom.js';

// FILTERS are the API's filters the bar offers, in order.
export const FILTERS = [
  { key: 'q', label: 'Search', placeholder: 'text in action, description, resource, name' },
  { key: 'actor_id', label: 'Actor' },
  { key: 'actor_type', label: 'Actor type', options: ['user', 'agent', 'system'] },
  { key: 'source', label: 'Source', list: ['mcp-tool', 'k8s-proxy', 'shell', 'forward-proxy', 'sandbox', 'aws-proxy', 'llm-proxy', 'agent', 'audit'] },
  { key: 'action', label: 'Action' },
  { key: 'resource_type', label: 'Resource type' },
  { key: 'resource_id', label: 'Resource id' },
  { key: 'result', label: 'Result', options: ['success', 'failure', 'denied', 'error'] },
  { key: 'status_code', label: 'Status' },
  { key: 'project', label: 'Project' },
  { key: 'session_id', label: 'Session', placeholder: 'one task or conversation' },
  { key: 'trace_id', label: 'Trace', placeholder: '32 hex digits' },
  { key: 'org', label: 'Org', allOrgs: true },
];

export const RANGES = [['15m', 'Last 15 minutes'], ['1h', 'Last hour'], ['24h', 'Last 24 hours'], ['7d', 'Last 7 days'], ['30d', 'Last 30 days'], ['custom', 'Custom…']];
export const DEFAULT_RANGE = '24h';

const FILTER_KEYS = new Set([...FILTERS.map((f) => f.key), 'since', 'until', 'producer_id']);

// apiFilter returns the filter parameters of the page's query: every
// filter key, and since defaulting to the last 24 hours.
export function apiFilter(q) {
  const p = new URLSearchParams();
  for (const [k, v] of q) if (FILTER_KEYS.has(k) && v !== '') p.append(k, v);
  if (!p.has('since')) p.set('since', DEFAULT_RANGE);
  return p;
}

// hideBookkeeping adds to filter p the exclusion of what the trail records
// about itself — its audit events and heartbeats — unless p asks for them
// by name, and returns p.
export function hideBookkeeping(p) {
  if (!p.getAll('source').includes('audit')) p.append('not_source', 'audit');
  if (!p.getAll('action').includes('heartbeat')) p.append('not_action', 'heartbeat');
  return p;
}

// range describes the query's time range in words and as absolute times.
export function range(q) {
  const since = q.get('since') || DEFAULT_RANGE;
  const preset = RANGES.find(([k]) => k === since);
  if (preset && !q.get('until')) return { preset: since, words: preset[1].toLowerCase() };
  const f = (s) => (s ? new Date(s).toLocaleString() : 'now');
  return { preset: 'custom', words: `${f(since)} – ${f(q.get('until'))}` };
}

// rangeSpan returns the range's length in milliseconds.
export function rangeSpan(q) {
  const since = q.get('since') || DEFAULT_RANGE;
  const m = /^(\d+)([smhd])$/.exec(since);
  const until = q.get('until') ? Date.parse(q.get('until')) : Date.now();
  if (m) return Number(m[1]) * { s: 1e3, m: 6e4, h: 36e5, d: 864e5 }[m[2]];
  return until - Date.parse(since);
}

// toLocalInput turns an ISO time into the value of a datetime-local input.
function toLocalInput(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

// filterBar returns the form of the filters in q. On submit it calls
// go with the new query: the page's own keys (except paging) kept, the
// filters replaced.
export function filterBar(q, session, go, { keep = [] } = {}) {
  const fields = [];
  const inputs = {};
  for (const f of FILTERS) {
    if (f.allOrgs && session.org !== '*') continue;
    const id = `f-${f.key}`;
    const values = q.getAll(f.key);
    let input;
    if (f.options) {
      input = h('select', { id, name: f.key },
        h('option', { value: '' }, 'any'),
        f.options.map((o) => h('option', { value: o, selected: values.includes(o) }, o)));
      if (values.length > 1) input.append(h('option', { value: values.join(','), selected: true }, values.join(', ')));
    } else {
      input = h('input', { id, name: f.key, type: f.key === 'q' ? 'search' : 'text', value: values.join(', '), placeholder: f.placeholder || '', autocomplete: 'off', list: f.list ? `${id}-list` : null, spellcheck: 'false' });
    }
    inputs[f.key] = input;
    fields.push(h('div', { class: `field field-${f.key}` }, h('label', { for: id }, f.label), input,
      f.list ? h('datalist', { id: `${id}-list` }, f.list.map((o) => h('option', { value: o }))) : null));
  }
  const r = range(q);
  const rangeSel = h('select', { id: 'f-range', name: 'range' }, RANGES.map(([k, label]) => h('option', { value: k, selected: k === r.preset }, label)));
  const sinceIn = h('input', { id: 'f-since', type: 'datetime-local', value: r.preset === 'custom' ? toLocalInput(q.get('since')) : '' });
  const untilIn = h('input', { id: 'f-until', type: 'datetime-local', value: r.preset === 'custom' && q.get('until') ? toLocalInput(q.get('until')) : '' });
  const custom = h('div', { class: 'custom-range', hidden: r.preset !== 'custom' },
    h('label', { for: 'f-since' }, 'From'), sinceIn, h('label', { for: 'f-until' }, 'To'), untilIn);
  rangeSel.addEventListener('change', () => {
    custom.hidden = rangeSel.value !== 'custom';
    if (rangeSel.value !== 'custom') form.requestSubmit();
  });
  fields.push(h('div', { class: 'field field-range' }, h('label', { for: 'f-range' }, 'Time range'), rangeSel, custom));

  const form = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filters' }, fields,
    h('div', { class: 'actions' },
      h('button', { type: 'submit', class: 'primary' }, 'Apply'),
      h('button', { type: 'button', class: 'link', onclick: () => go(keepOnly(q, keep)) }, 'Clear')));
  for (const el of Object.values(inputs)) if (el.tagName === 'SELECT') el.addEventListener('change', () => form.requestSubmit());
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const next = keepOnly(q, keep);
    for (const [key, el] of Object.entries(inputs)) {
      const raw = el.value.trim();
      if (!raw) continue;
      const parts = key === 'q' ? [raw] : raw.split(',').map((s) => s.trim()).filter(Boolean);
      for (const p of parts) next.append(key, p);
    }
    if (rangeSel.value === 'custom') {
      if (sinceIn.value) next.set('since', new Date(sinceIn.value).toISOString());
      if (untilIn.value) next.set('until', new Date(untilIn.value).toISOString());
    } else if (rangeSel.value !== DEFAULT_RANGE) {
      next.set('since', rangeSel.value);
    }
    go(next);
  });
  return form;
}

// keepOnly returns the keys of q listed in keep (the page's own state).
function keepOnly(q, keep) {
  const p = new URLSearchParams();
  for (const [k, v] of q) if (keep.includes(k)) p.append(k, v);
  return p;
}

// withFilter returns q's filters plus key=value, for links that narrow the
// view (a bar of a breakdown, a pivot).
export function withFilter(q, pairs) {
  const p = apiFilter(q);
  for (const [k, v] of pairs) {
    if (k === 'since' || k === 'until') p.delete(k);
  }
  for (const [k, v] of pairs) {
    if (v === null) { p.delete(k); continue; }
    if (k === 'since' || k === 'until') p.set(k, v);
    else if (!p.getAll(k).includes(v) || p.getAll(k).length > 1) { p.delete(k); p.append(k, v); }
  }
  if (p.get('since') === DEFAULT_RANGE && !p.has('until')) p.delete('since');
  return p;
}
