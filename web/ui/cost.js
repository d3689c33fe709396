// Cost: LLM tokens and cost over time, by agent, by model, by project and
// by session (one task), the cache hit ratio and the top spenders, from the counters the stores
// keep as columns (metadata.llm).
import { h, replace, int, usd, pct, spinner, problem, empty, choice } from './dom.js';
import { get } from './api.js';
import { filterBar, apiFilter, withFilter, range } from './filters.js';
import { stackedBars, barList } from './chart.js';
import { defaultInterval } from './overview.js';

const TOKENS = [['input_tokens', 'Input tokens'], ['output_tokens', 'Output tokens'], ['cache_read_tokens', 'Cache read tokens'], ['cache_write_tokens', 'Cache write tokens']];

// usage keeps the buckets that carry LLM usage: calls without a model or
// any token or cost are not LLM calls.
const usage = (b) => b.cost_usd > 0 || TOKENS.some(([k]) => b[k] > 0);

// cacheHit is the share of prompt tokens served from the cache.
export const cacheHit = (t) => (t.cache_read_tokens ? t.cache_read_tokens / (t.input_tokens + t.cache_read_tokens) : 0);

export async function render(ctx) {
  const { q, session, main, signal } = ctx;
  const filter = apiFilter(q);
  const interval = q.get('interval') || defaultInterval(q);
  const tiles = h('div', { class: 'tiles' }, spinner());
  const budgets = h('section', { 'aria-labelledby': 'budgets-title', id: 'budgets' }, h('h2', { id: 'budgets-title' }, 'Budgets'), spinner());
  const chart = h('section', { 'aria-labelledby': 'cost-series' }, h('h2', { id: 'cost-series' }, 'Cost over time'), spinner());
  const tokenChart = h('section', { 'aria-labelledby': 'token-series', id: 'tokens-over-time' }, h('h2', { id: 'token-series' }, 'Tokens over time'), spinner());
  const top = h('section', { 'aria-labelledby': 'top-title' }, h('h2', { id: 'top-title' }, 'Top spenders'), spinner());
  const tables = h('div', { class: 'cost-tables' });
  const sessions = h('section', { class: 'cost-table', 'aria-labelledby': 'c-session_id' }, h('h2', { id: 'c-session_id' }, 'By session'), spinner());
  replace(main, h('h1', {}, 'Cost'), filterBar(q, session, ctx.go, { keep: ['interval'] }),
    h('div', { class: 'toolbar' }, h('label', { for: 'interval' }, 'Buckets '),
      choice('interval', [['hour', 'Hour'], ['day', 'Day'], ['week', 'Week']], interval, (v) => { const n = new URLSearchParams(q); n.set('interval', v); ctx.go(n); })),
    tiles, budgets, chart, tokenChart, top, tables, sessions);

  // Budgets are in their current period whatever the page's range: what is
  // spent, what calls in flight hold, what is left.
  const orgs = filter.getAll('org');
  get('/v1/budgets/status', orgs.length === 1 ? new URLSearchParams({ org: orgs[0] }) : undefined, signal)
    .then((st) => replace(budgets, h('h2', { id: 'budgets-title' }, 'Budgets, this period'), budgetTable(st.budgets)))
    .catch((err) => { if (!signal.aborted) replace(budgets, h('h2', { id: 'budgets-title' }, 'Budgets'), problem(err)); });

  const agg = (by) => { const p = new URLSearchParams(filter); p.set('by', by); return get('/v1/aggregate', p, signal); };
  const ts = new URLSearchParams(filter);
  ts.set('interval', interval);
  const series = get('/v1/timeseries', ts, signal).then((s) => {
    const total = s.buckets.reduce((t, b) => t + b.cost_usd, 0);
    replace(chart, h('h2', { id: 'cost-series' }, 'Cost over time'), total === 0 ? empty(`No LLM cost in ${range(q).words}.`) : stackedBars({
      buckets: s.buckets, keys: [], interval, value: (b) => b.cost_usd, format: usd,
      caption: `Cost in USD per ${interval}, ${range(q).words}; bars start at UTC ${interval} boundaries.`,
      onPick: (b, start, end) => ctx.open('/events', withFilter(q, [['since', start.toISOString()], ['until', end.toISOString()]])),
    }));
    // The same buckets, stacked by kind of token.
    const keys = TOKENS.map(([, l]) => l.replace(' tokens', '').toLowerCase());
    const byKind = s.buckets.map((b) => ({ start: b.start, by: Object.fromEntries(TOKENS.map(([k], i) => [keys[i], b[k]])) }));
    const tokens = byKind.reduce((t, b) => t + Object.values(b.by).reduce((x, y) => x + y, 0), 0);
    replace(tokenChart, h('h2', { id: 'token-series' }, 'Tokens over time'), tokens === 0 ? empty(`No LLM tokens in ${range(q).words}.`) : stackedBars({
      buckets: byKind, keys, interval, value: (b) => Object.values(b.by).reduce((x, y) => x + y, 0),
      caption: `LLM tokens per ${interval} by kind, ${range(q).words}; bars start at UTC ${interval} boundaries.`,
    }));
  }).catch((err) => { if (!signal.aborted) { replace(chart, problem(err)); replace(tokenChart, problem(err)); } });

  // Sessions are grouped from the events, not rollups: on a large store
  // that takes longer, so the table fills in on its own.
  agg('session_id').then((a) => {
    const spent = a.buckets.filter((b) => b.key !== '' && usage(b)).sort((x, y) => y.cost_usd - x.cost_usd).slice(0, 20);
    replace(sessions, h('h2', { id: 'c-session_id' }, 'By session (the 20 costliest)'), usageTable(spent, 'session_id', q));
  }).catch((err) => { if (!signal.aborted) replace(sessions, h('h2', { id: 'c-session_id' }, 'By session'), problem(err)); });
  const views = [['actor_id', 'By agent'], ['model', 'By model'], ['project', 'By project']];
  const results = await Promise.all(views.map(([by]) => agg(by).catch((err) => err)));
  views.forEach(([by, title], i) => {
    const a = results[i];
    const sec = h('section', { class: 'cost-table', 'aria-labelledby': `c-${by}` }, h('h2', { id: `c-${by}` }, title));
    if (a instanceof Error) sec.append(problem(a));
    else sec.append(usageTable(a.buckets.filter(usage), by, q));
    tables.append(sec);
  });
  const byModel = results[1];
  if (byModel instanceof Error) { replace(tiles, problem(byModel)); } else {
    const t = byModel.buckets.reduce((acc, b) => {
      acc.cost_usd += b.cost_usd; acc.count += usage(b) ? b.count : 0;
      for (const [k] of TOKENS) acc[k] += b[k];
      return acc;
    }, { cost_usd: 0, count: 0, input_tokens: 0, output_tokens: 0, cache_read_tokens: 0, cache_write_tokens: 0 });
    const tile = (label, v, text) => h('div', { class: 'tile' }, h('span', { class: 'tile-v', dataset: { value: String(v) } }, text), h('span', { class: 'tile-k' }, label));
    replace(tiles, tile('cost', t.cost_usd, usd(t.cost_usd)), tile('LLM calls', t.count, int(t.count)),
      TOKENS.map(([k, label]) => tile(label.toLowerCase(), t[k], int(t[k]))),
      tile('cache hit ratio', cacheHit(t), pct(cacheHit(t))));
  }
  const byAgent = results[0];
  if (byAgent instanceof Error) replace(top, problem(byAgent)); else {
    const spenders = byAgent.buckets.filter((b) => b.cost_usd > 0).sort((a, b) => b.cost_usd - a.cost_usd).slice(0, 10);
    replace(top, h('h2', { id: 'top-title' }, `Top spenders, ${range(q).words}`), spenders.length ? barList(
      spenders.map((b) => ({ key: b.key, value: b.cost_usd, href: `/events?${withFilter(q, [['actor_id', b.key]])}` })), { format: usd }) : empty('No spending in this range.'));
  }
  await series;
}

function budgetTable(list) {
  if (!list.length) return empty('No budgets. An admin sets them with agenttrail budget set.');
  const scope = (b) => [['project', b.project], ['agent', b.actor_id], ['model', b.model]].filter(([, v]) => v).map(([k, v]) => `${k} ${v}`).join(', ') || 'every call';
  const resets = (b) => (b.resets_at ? `${b.resets_at.slice(0, 16).replace('T', ' ')} ${b.timezone}` : 'never');
  const money = (k, b) => h('td', { class: 'num', dataset: { [k]: String(b[`${k}_usd`]) } }, usd(b[`${k}_usd`]));
  return h('div', { class: 'table-wrap' }, h('table', { class: 'budgets' },
    h('thead', {}, h('tr', {}, ['Budget', 'Org', 'Scope', 'Period'].map((l) => h('th', { scope: 'col' }, l)),
      ['Limit', 'Spent', 'Reserved', 'Remaining'].map((l) => h('th', { scope: 'col', class: 'num', title: l === 'Reserved' ? "held by calls in flight and by the LLM proxies' allowances" : undefined }, l)), h('th', { scope: 'col' }, 'Resets'))),
    h('tbody', {}, list.map((b) => h('tr', { dataset: { name: b.name, org: b.org } },
      h('th', { scope: 'row' }, b.name), h('td', {}, b.org), h('td', {}, scope(b)), h('td', {}, b.period),
      money('limit', b), money('spent', b), money('reserved', b), money('remaining', b), h('td', {}, resets(b)))))));
}

function usageTable(buckets, by, q) {
  if (!buckets.length) return empty('No LLM usage.');
  buckets.sort((a, b) => b.cost_usd - a.cost_usd);
  return h('div', { class: 'table-wrap' }, h('table', { class: 'usage', dataset: { by } },
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, { actor_id: 'Agent', model: 'Model', project: 'Project', session_id: 'Session' }[by]),
      h('th', { scope: 'col', class: 'num' }, 'Calls'), TOKENS.map(([, l]) => h('th', { scope: 'col', class: 'num' }, l.replace(' tokens', ''))),
      h('th', { scope: 'col', class: 'num' }, 'Cache hit'), h('th', { scope: 'col', class: 'num' }, 'Cost'))),
    h('tbody', {}, buckets.map((b) => h('tr', { dataset: { key: b.key } },
      h('th', { scope: 'row' }, by === 'model' ? (b.key || '(none)') : h('a', { href: `/events?${withFilter(q, [[by, b.key]])}`, 'data-nav': true }, b.key || '(none)')),
      h('td', { class: 'num' }, int(b.count)), TOKENS.map(([k]) => h('td', { class: 'num' }, int(b[k]))),
      h('td', { class: 'num' }, pct(cacheHit(b))), h('td', { class: 'num', dataset: { cost: String(b.cost_usd) } }, usd(b.cost_usd)))))));
}
