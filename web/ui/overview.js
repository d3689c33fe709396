// Overview: events over time as stacked bars and breakdowns as bar lists.
// Every bar opens Events with its filter.
import { h, replace, int, pct, spinner, problem, empty, choice } from './dom.js';
import { get } from './api.js';
import { filterBar, apiFilter, withFilter, range, rangeSpan } from './filters.js';
import { stackedBars, barList } from './chart.js';

const BREAKDOWNS = [['source', 'By source'], ['actor_type', 'By actor type'], ['result', 'By result'], ['action', 'By action'], ['resource_type', 'By resource type']];
const BAD = new Set(['failure', 'denied', 'error']);

// defaultInterval picks buckets that make a readable chart for the range.
export function defaultInterval(q) {
  const span = rangeSpan(q);
  if (span <= 7 * 864e5) return 'hour';
  if (span <= 120 * 864e5) return 'day';
  return 'week';
}

export async function render(ctx) {
  const { q, session, main, signal } = ctx;
  const filter = apiFilter(q);
  const interval = q.get('interval') || defaultInterval(q);
  const split = q.get('split') === 'result' ? 'result' : 'source';
  const set = (k, v) => { const n = new URLSearchParams(q); n.set(k, v); ctx.go(n); };

  const controls = h('div', { class: 'toolbar' },
    h('label', { for: 'interval' }, 'Buckets '),
    choice('interval', [['hour', 'Hour'], ['day', 'Day'], ['week', 'Week']], interval, (v) => set('interval', v)),
    h('label', { for: 'split' }, ' Split by '),
    choice('split', [['source', 'Source'], ['result', 'Result']], split, (v) => set('split', v)));
  const tiles = h('div', { class: 'tiles' }, spinner());
  const chart = h('section', { 'aria-labelledby': 'series-title' }, h('h2', { id: 'series-title' }, 'Events over time'), spinner());
  const lists = h('div', { class: 'breakdowns' });
  replace(main, h('h1', {}, 'Overview'), filterBar(q, session, ctx.go, { keep: ['interval', 'split'] }), controls, tiles, chart, lists);

  const ts = new URLSearchParams(filter);
  ts.set('interval', interval);
  ts.set('by', split);
  const series = get('/v1/timeseries', ts, signal).then((s) => {
    const keys = Object.keys(s.buckets.reduce((acc, b) => Object.assign(acc, b.by || {}), {})).sort();
    const total = s.buckets.reduce((t, b) => t + b.count, 0);
    replace(chart, h('h2', { id: 'series-title' }, 'Events over time'),
      total === 0 ? empty(`No events in ${range(q).words}.`) : stackedBars({
        buckets: s.buckets, keys, interval,
        caption: `Events per ${interval} by ${split}, ${range(q).words}; bars start at UTC ${interval} boundaries, labels in your time zone.`,
        onPick: (b, start, end) => ctx.open('/events', withFilter(q, [['since', start.toISOString()], ['until', end.toISOString()]])),
      }));
  }).catch((err) => { if (!signal.aborted) replace(chart, problem(err)); });

  const aggs = BREAKDOWNS.map(([by, title]) => {
    const sec = h('section', { class: 'breakdown', 'aria-labelledby': `b-${by}` }, h('h2', { id: `b-${by}` }, title), spinner());
    lists.append(sec);
    const p = new URLSearchParams(filter);
    p.set('by', by);
    return get('/v1/aggregate', p, signal).then((a) => {
      const rows = a.buckets.slice(0, 10).map((b) => ({ key: b.key, value: b.count, bad: by === 'result' && BAD.has(b.key), href: `/events?${withFilter(q, [[by, b.key]])}` }));
      replace(sec, h('h2', { id: `b-${by}` }, title), rows.length ? barList(rows) : empty('None.'),
        a.buckets.length > 10 ? h('p', { class: 'sub' }, `Top 10 of ${int(a.buckets.length)}.`) : null);
      return [by, a];
    }).catch((err) => { if (!signal.aborted) replace(sec, h('h2', {}, title), problem(err)); return [by, null]; });
  });

  const byResult = (await aggs[2])[1];
  if (byResult) {
    const n = (k) => (byResult.buckets.find((b) => b.key === k) || { count: 0 }).count;
    const total = byResult.buckets.reduce((t, b) => t + b.count, 0);
    const tile = (label, v, cls, key) => h('a', { class: `tile ${cls || ''}`, href: `/events?${withFilter(q, key ? [['result', key]] : [])}`, 'data-nav': true },
      h('span', { class: 'tile-v', dataset: { value: String(v) } }, int(v)), h('span', { class: 'tile-k' }, label),
      key && total ? h('span', { class: 'sub' }, pct(v / total)) : null);
    replace(tiles, tile('events', total), tile('failures', n('failure'), n('failure') ? 'bad' : '', 'failure'),
      tile('denied', n('denied'), n('denied') ? 'warn' : '', 'denied'), tile('errors', n('error'), n('error') ? 'bad' : '', 'error'));
  } else {
    replace(tiles);
  }
  await Promise.all([series, ...aggs]);
}
