// Charts as plain SVG, built with DOM calls (no inline style, so the CSP
// holds). Each chart carries a table of the same numbers for screen
// readers, and <title> tooltips on its bars.
import { h, s, int } from './dom.js';

const W = 1200;
const H = 260;
const PAD = { l: 56, r: 8, t: 10, b: 28 };

// colorOf gives a stable palette slot to a series key; results that went
// wrong get the alarming colours whatever their order.
const BAD = { failure: 'c-bad', denied: 'c-warn', error: 'c-err' };
export function colorOf(key, i) {
  return BAD[key] || (key === 'success' ? 'c-ok' : `c-${i % 12}`);
}

// niceMax rounds a maximum up to 1, 2 or 5 times a power of ten.
export function niceMax(v) {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

const bucketMs = { hour: 36e5, day: 864e5, week: 7 * 864e5 };

function label(d, interval, spanDays) {
  if (interval === 'hour' && spanDays <= 1.5) return d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
  if (interval === 'hour') return d.toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit' });
  return d.toLocaleDateString(undefined, { month: 'short', day: 'numeric' });
}

// stackedBars draws buckets ({start, count, by, value}) as bars stacked by
// the keys of by (or one bar of value(b) when keys is empty). onPick(b) is
// called when a bar is clicked or activated from the keyboard.
export function stackedBars({ buckets, keys, interval, value = (b) => b.count, format = int, onPick, caption }) {
  const max = niceMax(Math.max(0, ...buckets.map(value)));
  const iw = W - PAD.l - PAD.r;
  const ih = H - PAD.t - PAD.b;
  const bw = iw / Math.max(1, buckets.length);
  const y = (v) => PAD.t + ih - (v / max) * ih;
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': caption });
  // Grid and y axis: 0, half, max.
  for (const v of [0, max / 2, max]) {
    svg.append(s('line', { x1: PAD.l, x2: W - PAD.r, y1: y(v), y2: y(v), class: 'grid' }));
    svg.append(s('text', { x: PAD.l - 6, y: y(v) + 4, class: 'tick', 'text-anchor': 'end' }, format(v)));
  }
  const span = buckets.length ? (Date.parse(buckets[buckets.length - 1].start) - Date.parse(buckets[0].start)) / 864e5 : 0;
  const every = Math.max(1, Math.ceil(buckets.length / 8));
  buckets.forEach((b, i) => {
    const x = PAD.l + i * bw;
    const start = new Date(b.start);
    const end = new Date(start.getTime() + bucketMs[interval]);
    const g = s('g', { class: 'bar', tabindex: onPick ? 0 : null, role: onPick ? 'button' : null, dataset: { start: b.start, total: String(value(b)) } });
    const parts = keys.length ? keys.map((k, ki) => [k, (b.by && b.by[k]) || 0, colorOf(k, ki)]) : [['', value(b), 'c-0']];
    let acc = 0;
    for (const [k, v, cls] of parts) {
      if (!v) continue;
      g.append(s('rect', { x: x + 1, width: Math.max(1, bw - 2), y: y(acc + v), height: Math.max(0.5, y(acc) - y(acc + v)), class: cls }));
      acc += v;
    }
    // A full-height, invisible target makes small bars easy to hit.
    g.append(s('rect', { x, width: bw, y: PAD.t, height: ih, class: 'hit' }));
    const words = `${start.toLocaleString()} – ${end.toLocaleString()} (UTC ${b.start.slice(0, 16).replace('T', ' ')}): ${format(value(b))}` +
      (keys.length ? parts.filter((p) => p[1]).map(([k, v]) => `\n${k || '(none)'}: ${format(v)}`).join('') : '');
    g.prepend(s('title', {}, words));
    if (onPick) {
      g.addEventListener('click', () => onPick(b, start, end));
      g.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); onPick(b, start, end); } });
    }
    svg.append(g);
    if (i % every === 0) {
      svg.append(s('text', { x: x + bw / 2, y: H - 8, class: 'tick', 'text-anchor': 'middle' }, label(start, interval, span)));
    }
  });
  const legend = keys.length ? h('ul', { class: 'legend' }, keys.map((k, i) => h('li', {}, h('span', { class: `swatch ${colorOf(k, i)}`, 'aria-hidden': 'true' }), k || '(none)'))) : null;
  // Tables take at least their content's width, so the wrapper is what
  // hides this one from sight (and from the page's width).
  const table = h('div', { class: 'sr-only' }, h('table', {}, h('caption', {}, caption),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Bucket start (UTC)'), h('th', { scope: 'col' }, 'Total'), keys.map((k) => h('th', { scope: 'col' }, k || '(none)')))),
    h('tbody', {}, buckets.map((b) => h('tr', {}, h('td', {}, b.start), h('td', {}, format(value(b))), keys.map((k) => h('td', {}, int((b.by && b.by[k]) || 0))))))));
  return h('figure', { class: 'chart-wrap' }, svg, legend, h('figcaption', {}, caption), table);
}

// barList draws rows ({key, value, href, bad}) as a list of labelled bars,
// each a link to the events behind it.
export function barList(rows, { format = int, label = (k) => k || '(none)' } = {}) {
  const max = Math.max(1, ...rows.map((r) => r.value));
  return h('ol', { class: 'barlist' }, rows.map((r) => {
    const fill = h('span', { class: `fill${r.bad ? ' bad' : ''}`, 'aria-hidden': 'true' });
    fill.style.width = `${(100 * r.value) / max}%`; // CSSOM, which the CSP allows
    return h('li', { dataset: { key: r.key, value: String(r.value) } }, h('a', { href: r.href, 'data-nav': true, class: r.bad ? 'bad' : null },
      fill, h('span', { class: 'k' }, label(r.key)), h('span', { class: 'v' }, format(r.value))));
  }));
}
