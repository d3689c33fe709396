package web_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/agenttrail/agenttrail/server"
	"github.com/agenttrail/agenttrail/servertest"
)

// payload is what an agent may write into any string it controls: markup
// that runs script if it is ever parsed as HTML, and text that would break
// out of an attribute or a template.
const payload = `<img src=x onerror="alert('img')"><script>alert('script')</script>"'><svg onload=alert('svg')>{{constructor.constructor('alert(1)')()}}javascript:alert('js')`

// tight is the payload for fields that refuse spaces (ids).
const tight = `<svg/onload=alert('svg')><img/src=x/onerror=alert('img')>"'><script>alert(1)</script>`

// TestConsoleHostileEvents stores events carrying the payload in every
// string field the API accepts it in and in metadata (values and keys),
// opens every page and the detail panel, and checks that no script ran, the
// CSP refused nothing (nothing tried), the console logged nothing, no
// element came from the payload, and the text shows verbatim.
func TestConsoleHostileEvents(t *testing.T) {
	srv := servertest.Start(t)
	meta := map[string]any{
		"note": payload, payload: "key", "nested": map[string]any{"list": []any{payload, 1}},
		"llm": map[string]any{"provider": payload, "model": payload, "input_tokens": 10, "output_tokens": 5, "cost_usd": 0.25},
	}
	ingest(t, srv,
		event(map[string]any{"id": "hostile-1", "actor_id": tight, "actor_name": payload, "action": payload, "resource_id": payload,
			"description": payload, "producer_id": tight, "producer_seq": 1, "metadata": meta,
			"time": ago(30 * time.Minute), "result": "failure", "status_code": 403}),
		event(map[string]any{"id": "hostile-2", "actor_id": tight, "action": payload, "producer_id": tight, "producer_seq": 4, "time": ago(20 * time.Minute)}),
	)
	hb := func(d time.Duration) map[string]any {
		return event(map[string]any{"actor_id": tight, "source": "agent", "action": "heartbeat", "time": ago(d), "metadata": map[string]any{"interval_ms": 60000}})
	}
	ingest(t, srv, hb(50*time.Minute), hb(49*time.Minute), hb(10*time.Minute))

	b := newBrowser(t, srv)
	b.signIn(t, server.RoleAdmin, server.AllOrgs)
	pages := []string{
		"/events?since=1h",
		"/events?since=1h&event=hostile-1",
		"/events?since=1h&q=" + strings.ReplaceAll(payload[:20], " ", "+"),
		"/overview?since=1h",
		"/cost?since=1h",
		"/gaps?since=1h",
		"/tokens",
	}
	for _, p := range pages {
		b.open(t, p)
		b.do(t, chromedp.WaitReady(chromedp.CSS(`#banner[aria-busy="false"]`)))
		if n := eval[int](t, b, `document.querySelectorAll('img, script:not([src]), svg[onload], [onerror], [onload], iframe, object, embed').length`); n != 0 {
			t.Errorf("%s: %d elements came from event data", p, n)
		}
		if pwned := eval[[]string](t, b, `window.__pwned`); len(pwned) > 0 {
			t.Errorf("%s: script ran or the CSP had to refuse it: %v", p, pwned)
		}
		if p == "/tokens" {
			continue
		}
		if text := eval[string](t, b, `document.getElementById('main').textContent + document.getElementById('banner').textContent`); !strings.Contains(text, payload) && !strings.HasPrefix(p, "/gaps") {
			t.Errorf("%s does not show the payload verbatim", p)
		}
	}
	// The detail panel shows every field and the metadata as text.
	b.open(t, "/events?since=1h&event=hostile-1")
	fields := eval[map[string]string](t, b, `Object.fromEntries([...document.querySelectorAll('#detail dd[data-field]')].map((d) => [d.dataset.field, d.firstChild.textContent]))`)
	for f, want := range map[string]string{"actor_id": tight, "actor_name": payload, "action": payload, "resource_id": payload, "description": payload, "producer_id": tight} {
		if fields[f] != want {
			t.Errorf("detail %s = %q, want the payload verbatim", f, fields[f])
		}
	}
	if md := eval[string](t, b, `document.querySelector('#detail pre.metadata').textContent`); strings.Count(md, `<img src=x onerror=\"alert('img')\">`) < 4 {
		t.Errorf("metadata shows the payload %d times, want it in every value and key: %s", strings.Count(md, "<img"), md)
	}
	// Gaps show the hostile agent and producer as text.
	b.open(t, "/gaps?since=1h")
	cells := eval[[]string](t, b, `[...document.querySelectorAll('#heartbeat-gaps td:first-child, #sequence-gaps td:first-child')].map((c) => c.textContent)`)
	if len(cells) < 2 || slices.ContainsFunc(cells, func(c string) bool { return c != tight }) {
		t.Errorf("gaps show %q, want the hostile agent and producer verbatim", cells)
	}
	if pwned := eval[[]string](t, b, `window.__pwned`); len(pwned) > 0 {
		t.Errorf("script ran: %v", pwned)
	}
	if msgs := b.messages(); len(msgs) > 0 {
		t.Errorf("console messages: %v", msgs)
	}
}
