// The console's one way to the JSON API. The token lives in sessionStorage
// only: never localStorage, never a cookie, never a URL. A 401 ends the
// session and sends the console back to sign-in.

const KEY = 'agenttrail.token';

export const token = () => sessionStorage.getItem(KEY);
export const setToken = (t) => { sessionStorage.removeItem('agenttrail.session'); sessionStorage.setItem(KEY, t); };
export const clearToken = () => { sessionStorage.removeItem(KEY); sessionStorage.removeItem('agenttrail.session'); };

// APIError is a failed call, with the problem document's detail as message.
export class APIError extends Error {
  constructor(status, detail, field) {
    super(detail);
    this.status = status;
    this.field = field;
  }
}

// sessionEnded is dispatched on window when the API refuses the token.
export const SESSION_ENDED = 'agenttrail:session-ended';

async function failure(resp) {
  let detail = `${resp.status} ${resp.statusText}`;
  let field;
  try {
    const p = await resp.json();
    if (p.detail) detail = p.detail;
    field = p.field;
  } catch { /* not a problem document */ }
  const err = new APIError(resp.status, detail, field);
  if (resp.status === 401 && token()) {
    clearToken();
    window.dispatchEvent(new CustomEvent(SESSION_ENDED, { detail }));
  }
  return err;
}

function headers(extra) {
  const h = { Accept: 'application/json', ...extra };
  const t = token();
  if (t) h.Authorization = `Bearer ${t}`;
  return h;
}

// request calls the API and returns the decoded answer; it throws APIError.
export async function request(method, path, { params, body, signal } = {}) {
  const qs = params && [...params].length ? `?${params}` : '';
  const init = { method, headers: headers(body ? { 'Content-Type': 'application/json' } : {}), signal, cache: 'no-store', credentials: 'omit' };
  if (body) init.body = JSON.stringify(body);
  const resp = await fetch(path + qs, init);
  if (!resp.ok) throw await failure(resp);
  return resp.json();
}

export const get = (path, params, signal) => request('GET', path, { params, signal });

// stream follows GET /v1/stream (Server-Sent Events) with fetch, because
// EventSource cannot send an Authorization header. onEvent gets each event
// until signal aborts.
export async function stream(params, onEvent, signal) {
  const resp = await fetch(`/v1/stream?${params}`, { headers: headers({ Accept: 'text/event-stream' }), signal, cache: 'no-store', credentials: 'omit' });
  if (!resp.ok) throw await failure(resp);
  const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let end;
    while ((end = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, end);
      buf = buf.slice(end + 2);
      const data = block.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n');
      if (data) onEvent(JSON.parse(data));
    }
  }
}

// download saves GET /v1/export for params in format as a file.
export async function download(params, format) {
  const p = new URLSearchParams(params);
  p.set('format', format);
  const resp = await fetch(`/v1/export?${p}`, { headers: headers({ Accept: '*/*' }), cache: 'no-store', credentials: 'omit' });
  if (!resp.ok) throw await failure(resp);
  const blob = await resp.blob();
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = `agenttrail-events.${format === 'ocsf' ? 'ocsf.json' : format}`;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}
