// Gaps: heartbeat gaps per agent and sequence gaps per producer in the
// range: what the trail knows it is missing.
import { h, replace, when, int, empty } from './dom.js';
import { get } from './api.js';
import { filterBar, apiFilter, withFilter, range } from './filters.js';

export async function render(ctx) {
  const { q, session, main, signal } = ctx;
  const filter = apiFilter(q);
  const body = h('div', {});
  replace(main, h('h1', {}, 'Gaps'), filterBar(q, session, ctx.go), body);
  const g = await get('/v1/gaps', filter, signal);
  const around = (from, to) => withFilter(q, [['since', new Date(from).toISOString()], ['until', new Date(to).toISOString()]]);
  replace(body,
    h('p', {}, `Heartbeat and sequence gaps in ${range(q).words}. A heartbeat gap is a time an agent that sends heartbeats went silent; a sequence gap is a run of events a producer numbered but the trail never received.`),
    h('section', { 'aria-labelledby': 'hb-title' }, h('h2', { id: 'hb-title' }, `Heartbeat gaps (${int(g.heartbeats.length)})`),
      g.heartbeats.length ? h('div', { class: 'table-wrap' }, h('table', { id: 'heartbeat-gaps' },
        h('thead', {}, h('tr', {}, ['Agent', 'Producer', 'Org', 'Silent from', 'Until', 'Missed beats', ''].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, g.heartbeats.map((x) => h('tr', { class: x.open ? 'bad' : null },
          h('td', {}, x.actor_id), h('td', {}, x.producer_id || ''), h('td', {}, x.org), h('td', {}, when(x.from)),
          h('td', {}, x.open ? h('strong', {}, 'still silent') : when(x.to)), h('td', { class: 'num' }, int(x.missed)),
          h('td', {}, h('a', { href: `/events?${around(x.from, x.to)}&actor_id=${encodeURIComponent(x.actor_id)}`, 'data-nav': true }, 'events')))))))
        : empty('No heartbeat gaps.')),
    h('section', { 'aria-labelledby': 'seq-title' }, h('h2', { id: 'seq-title' }, `Sequence gaps (${int(g.sequences.length)})`),
      g.sequences.length ? h('div', { class: 'table-wrap' }, h('table', { id: 'sequence-gaps' },
        h('thead', {}, h('tr', {}, ['Producer', 'Org', 'Missing from', 'to', 'Events missing'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, g.sequences.map((x) => h('tr', {},
          h('td', {}, x.producer_id), h('td', {}, x.org), h('td', { class: 'num' }, int(x.from)), h('td', { class: 'num' }, int(x.to)),
          h('td', { class: 'num' }, int(x.to - x.from + 1)))))))
        : empty('No sequence gaps.')));
}
