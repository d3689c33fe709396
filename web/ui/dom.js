// Building elements safely. Every piece of event data reaches the page
// through h(), which sets text with text nodes and attributes with
// setAttribute: nothing is ever parsed as HTML, so a description holding
// <img onerror=...> is shown as those characters and nothing runs.

const SVG_NS = 'http://www.w3.org/2000/svg';

function build(el, attrs, children) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2), v);
    } else if (k === 'dataset') {
      Object.assign(el.dataset, v);
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

// h returns an HTML element: h('a', {href: '/x'}, 'text', child, [more]).
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

// s returns an SVG element.
export function s(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

// replace empties el and appends children.
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const intFmt = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const usdFmt = new Intl.NumberFormat(undefined, { style: 'currency', currency: 'USD', minimumFractionDigits: 2, maximumFractionDigits: 4 });
const pctFmt = new Intl.NumberFormat(undefined, { style: 'percent', maximumFractionDigits: 1 });

// int formats a count with thousands separators.
export const int = (n) => intFmt.format(n || 0);
// usd formats an amount in US dollars.
export const usd = (x) => usdFmt.format(x || 0);
// pct formats a ratio (0..1) as a percentage.
export const pct = (x) => pctFmt.format(x || 0);

// when shows a time in the browser's zone, with UTC on hover.
export function when(iso) {
  if (!iso) return h('span', {}, '');
  const d = new Date(iso);
  return h('time', { datetime: iso, title: d.toISOString().replace('T', ' ').replace('Z', ' UTC') }, localTime(d));
}

export function localTime(d) {
  return d.toLocaleString(undefined, { year: 'numeric', month: 'short', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

// ms formats a duration given in milliseconds.
export function ms(x) {
  if (x === undefined || x === null) return '';
  if (x < 1000) return `${Number(x.toFixed(1))} ms`;
  return `${Number((x / 1000).toFixed(2))} s`;
}

// spinner is the loading state of a region.
export function spinner(what = 'Loading…') {
  return h('p', { class: 'loading', role: 'status' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), what);
}

// problem shows an error in words: the API's detail.
export function problem(err) {
  return h('p', { class: 'error', role: 'alert' }, err && err.message ? err.message : String(err));
}

// empty is the words shown when there is nothing to show.
export function empty(words) {
  return h('p', { class: 'empty' }, words);
}

// copyButton copies text to the clipboard.
export function copyButton(text, label = 'Copy') {
  const b = h('button', { type: 'button', class: 'copy', 'aria-label': `${label}` }, 'Copy');
  b.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(text);
      b.textContent = 'Copied';
    } catch {
      b.textContent = 'Copy failed';
    }
    setTimeout(() => { b.textContent = 'Copy'; }, 1500);
  });
  return b;
}

// choice is a <select> of [value, label] options calling onChange(value).
export function choice(id, options, value, onChange) {
  const el = h('select', { id }, options.map(([v, l]) => h('option', { value: v, selected: v === value }, l)));
  el.addEventListener('change', () => onChange(el.value));
  return el;
}
