// Tokens (admin): list, create (the secret shown once) and revoke.
import { h, replace, when, empty, problem, copyButton, choice } from './dom.js';
import { get, request } from './api.js';

export async function render(ctx) {
  const { session, main, signal } = ctx;
  const list = h('div', {});
  const created = h('div', { 'aria-live': 'polite' });
  const name = h('input', { id: 't-name', name: 'name', autocomplete: 'off', placeholder: 'e.g. ci-reader', spellcheck: 'false' });
  const role = choice('t-role', [['read', 'read'], ['ingest', 'ingest'], ['admin', 'admin']], 'read', () => {});
  const org = h('input', { id: 't-org', name: 'org', autocomplete: 'off', value: session.org === '*' ? '' : session.org, readonly: session.org !== '*', placeholder: 'one org, or * for all', required: true });
  const form = h('form', { class: 'create-token', 'aria-labelledby': 'create-title' },
    h('h2', { id: 'create-title' }, 'Create a token'),
    h('div', { class: 'field' }, h('label', { for: 't-name' }, 'Name'), name),
    h('div', { class: 'field' }, h('label', { for: 't-role' }, 'Role'), role),
    h('div', { class: 'field' }, h('label', { for: 't-org' }, 'Org'), org),
    h('button', { type: 'submit', class: 'primary' }, 'Create'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      const t = await request('POST', '/v1/tokens', { body: { name: name.value.trim(), role: role.value, org: org.value.trim() } });
      replace(created, h('div', { class: 'secret', role: 'alert' },
        h('p', {}, h('strong', {}, `Token “${t.name}” created. `), 'Copy it now: it is shown only once.'),
        h('code', { id: 'new-secret' }, t.secret), ' ', copyButton(t.secret, 'Copy the token')));
      name.value = '';
      await load();
    } catch (err) {
      replace(created, problem(err));
    }
  });
  replace(main, h('h1', {}, 'Tokens'), form, created, h('h2', {}, 'All tokens'), list);

  async function load() {
    const { tokens } = await get('/v1/tokens', null, signal);
    if (!tokens.length) return replace(list, empty('No tokens.'));
    const now = Date.now();
    const status = (t) => (t.revoked_at ? 'revoked' : t.expires_at && Date.parse(t.expires_at) <= now ? 'expired' : 'active');
    replace(list, h('div', { class: 'table-wrap' }, h('table', { id: 'tokens' },
      h('thead', {}, h('tr', {}, ['Name', 'Id', 'Role', 'Org', 'Created', 'By', 'Expires', 'Status', ''].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, tokens.slice().reverse().map((t) => h('tr', { dataset: { id: t.id }, class: status(t) !== 'active' ? 'dim' : null },
        h('td', {}, t.name), h('td', {}, h('code', {}, t.id)), h('td', {}, t.role), h('td', {}, t.org),
        h('td', {}, when(t.created_at)), h('td', {}, t.created_by || 'server'), h('td', {}, t.expires_at ? when(t.expires_at) : 'never'),
        h('td', {}, status(t) === 'revoked' ? ['revoked ', when(t.revoked_at)] : status(t)),
        h('td', {}, status(t) === 'active' ? h('button', {
          type: 'button', class: 'danger', 'aria-label': `Revoke ${t.name}`,
          onclick: async (e) => {
            if (!window.confirm(`Revoke the token “${t.name}”? Whatever uses it stops working at once.`)) return;
            e.target.disabled = true;
            try { await request('DELETE', `/v1/tokens/${encodeURIComponent(t.id)}`); await load(); } catch (err) { e.target.after(problem(err)); }
          },
        }, 'Revoke') : null)))))));
  }
  try { await load(); } catch (err) { if (!signal.aborted) replace(list, problem(err)); }
}
