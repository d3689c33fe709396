package web_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/agenttrail/agenttrail/server"
	"github.com/agenttrail/agenttrail/servertest"
)

// seedVaried stores n events over the last hours across sources, actors
// and results.
func seedVaried(t *testing.T, srv *servertest.Server, n int) {
	t.Helper()
	sources := []string{"shell", "mcp-tool", "llm-proxy", "forward-proxy"}
	results := []string{"success", "success", "failure", "error"}
	var evs []map[string]any
	for i := range n {
		ev := event(map[string]any{
			"id":          fmt.Sprintf("ev-%04d", i),
			"time":        ago(time.Duration(i)*3*time.Minute + time.Second),
			"actor_id":    fmt.Sprintf("agent-%d", i%3),
			"source":      sources[i%len(sources)],
			"action":      fmt.Sprintf("act-%d", i%5),
			"result":      results[i%len(results)],
			"resource_id": fmt.Sprintf("res-%d", i%7),
			"duration_ms": float64(i) * 1.5,
			"project":     []string{"alpha", "beta"}[i%2],
		})
		if i%4 == 2 {
			ev["metadata"] = map[string]any{"llm": map[string]any{"provider": "openai", "model": []string{"gpt-5", "claude-4"}[i%8/4],
				"input_tokens": 1000 + i, "output_tokens": 200 + i, "cache_read_tokens": 300, "cache_write_tokens": 50, "cost_usd": 0.0125 * float64(i%5+1)}}
		}
		evs = append(evs, ev)
	}
	ingest(t, srv, evs...)
}

// TestConsoleHidesBookkeeping: as `agenttrail query` does, the Events page
// leaves out the trail's audit of its own reads (which every page load
// adds) and heartbeats, until the checkbox asks for them; the page then
// lists them and says so in its URL.
func TestConsoleHidesBookkeeping(t *testing.T) {
	srv := servertest.Start(t)
	seedVaried(t, srv, 12)
	ingest(t, srv, event(map[string]any{"id": "hb-1", "time": ago(time.Minute), "actor_id": "agent-0", "source": "agent", "action": "heartbeat", "result": "success"}))
	b := newBrowser(t, srv)
	b.signIn(t, server.RoleRead, server.AllOrgs)

	b.open(t, "/events?since=1h")
	var audit, hidden apiPage
	api(t, srv, http.MethodGet, "/v1/events?since=1h&source=audit&limit=5", nil, &audit)
	if len(audit.ids()) == 0 {
		t.Fatal("the console's reads left no audit events; the test needs some")
	}
	b.open(t, "/events?since=1h")
	api(t, srv, http.MethodGet, "/v1/events?since=1h&not_source=audit&not_action=heartbeat&limit=50", nil, &hidden)
	got := b.pageIDs(t)
	if !slices.Equal(got, hidden.ids()) || len(got) != 12 {
		t.Fatalf("by default the page shows %v, want the 12 seeded events %v", got, hidden.ids())
	}

	b.do(t, chromedp.Click(chromedp.CSS("#all-sources")), ready())
	if p := b.path(t); !strings.Contains(p, "all=1") {
		t.Errorf("after ticking the box the URL is %s, want all=1", p)
	}
	got = b.pageIDs(t)
	var sawAudit, sawHeartbeat bool
	for _, id := range got {
		sawAudit = sawAudit || strings.HasPrefix(id, "agenttrail:")
		sawHeartbeat = sawHeartbeat || id == "hb-1"
	}
	if !sawAudit || !sawHeartbeat {
		t.Errorf("with the box ticked the page shows %v, want audit events and the heartbeat hb-1 among them", got)
	}
}

func TestConsoleEventsMatchAPI(t *testing.T) {
	srv := servertest.Start(t)
	seedVaried(t, srv, 130)
	b := newBrowser(t, srv)
	b.signIn(t, server.RoleRead, server.AllOrgs)

	// Page one of a filter, then page two by the Next link: the rows are
	// the API's, in order.
	filter := query("source", "shell", "source", "mcp-tool", "since", "7d")
	b.open(t, "/events?"+filter+"&limit=20")
	var first apiPage
	api(t, srv, http.MethodGet, "/v1/events?"+filter+"&limit=20", nil, &first)
	if got := b.pageIDs(t); !slices.Equal(got, first.ids()) || len(got) != 20 {
		t.Fatalf("page 1 shows %v, the API answers %v", got, first.ids())
	}
	var agg struct {
		Buckets []struct{ Count int } `json:"buckets"`
	}
	api(t, srv, http.MethodGet, "/v1/aggregate?by=result&"+filter, nil, &agg)
	total := 0
	for _, x := range agg.Buckets {
		total += x.Count
	}
	b.do(t, chromedp.WaitReady(chromedp.CSS("#match-count[data-count]")))
	if got := eval[string](t, b, `document.getElementById('match-count').dataset.count`); got != fmt.Sprint(total) || total != 66 {
		t.Errorf("the page counts %s events, the API %d (want 66)", got, total)
	}
	b.do(t, chromedp.Click(chromedp.CSS("#next-page")), ready())
	var second apiPage
	api(t, srv, http.MethodGet, "/v1/events?"+filter+"&limit=20&cursor="+*first.NextCursor, nil, &second)
	if got := b.pageIDs(t); !slices.Equal(got, second.ids()) {
		t.Fatalf("page 2 shows %v, the API answers %v", got, second.ids())
	}
	page2 := b.path(t)

	// Reload, back and forward show the same pages.
	b.do(t, chromedp.Reload(), ready())
	if got := b.pageIDs(t); b.path(t) != page2 || !slices.Equal(got, second.ids()) {
		t.Errorf("after reload: %s shows %v, want %s with %v", b.path(t), got, page2, second.ids())
	}
	b.do(t, chromedp.NavigateBack(), ready())
	if got := b.pageIDs(t); !slices.Equal(got, first.ids()) {
		t.Errorf("after back: %v, want page 1 %v", got, first.ids())
	}
	b.do(t, chromedp.NavigateForward(), ready())
	if got := b.pageIDs(t); !slices.Equal(got, second.ids()) {
		t.Errorf("after forward: %v, want page 2 %v", got, second.ids())
	}

	// Filtering in the bar puts the filter in the URL, and the rows are
	// what the API answers for it.
	b.open(t, "/events?since=7d")
	b.do(t, chromedp.SendKeys(chromedp.CSS("#f-actor_id"), "agent-2"), chromedp.Click(chromedp.CSS(".filters button[type=submit]")), ready())
	if p := b.path(t); !strings.Contains(p, "actor_id=agent-2") || !strings.Contains(p, "since=7d") {
		t.Errorf("after filtering, the URL is %s, want actor_id=agent-2 and since=7d", p)
	}
	var byActor apiPage
	api(t, srv, http.MethodGet, "/v1/events?actor_id=agent-2&since=7d&limit=50", nil, &byActor)
	if got := b.pageIDs(t); !slices.Equal(got, byActor.ids()) {
		t.Errorf("actor_id=agent-2 shows %v, the API %v", got, byActor.ids())
	}
	b.do(t, chromedp.Reload(), ready())
	if got := b.pageIDs(t); !slices.Equal(got, byActor.ids()) {
		t.Errorf("after reload, actor_id=agent-2 shows %v, the API %v", got, byActor.ids())
	}

	// Keyboard: j moves to the first row, Enter opens it, Esc closes it,
	// / focuses search, ? lists the shortcuts.
	b.do(t, chromedp.KeyEvent("j"), chromedp.KeyEvent("j"), chromedp.KeyEvent("k"), chromedp.KeyEvent("\r"), ready())
	if p := b.path(t); !strings.Contains(p, "event="+byActor.ids()[0]) {
		t.Errorf("j j k Enter opened %s, want the first row %s", p, byActor.ids()[0])
	}
	if got := eval[string](t, b, `document.querySelector('#detail dd[data-field="id"]').firstChild.textContent`); got != byActor.ids()[0] {
		t.Errorf("detail panel shows id %q, want %q", got, byActor.ids()[0])
	}
	b.do(t, chromedp.KeyEvent("\x1b"), ready())
	if p := b.path(t); strings.Contains(p, "event=") {
		t.Errorf("Esc left %s, want the panel closed", p)
	}
	b.do(t, chromedp.KeyEvent("/"))
	if got := eval[string](t, b, `document.activeElement.id`); got != "f-q" {
		t.Errorf("/ focused %q, want the search box", got)
	}
	b.do(t, chromedp.Blur(chromedp.CSS("#f-q")), chromedp.KeyEvent("?"))
	if !eval[bool](t, b, `!!document.querySelector('dialog#help[open]')`) {
		t.Errorf("? opened no shortcuts dialog")
	}
	if msgs := b.messages(); len(msgs) > 0 {
		t.Errorf("console messages: %v", msgs)
	}

	// A filter the API refuses is explained in the API's words, and a
	// filter matching nothing says so.
	b.open(t, "/events?status_code=abc")
	if msg := eval[string](t, b, `(document.querySelector('main .error') || {}).textContent || ''`); !strings.Contains(msg, "status_code") {
		t.Errorf("a bad status_code shows %q, want the API's detail naming status_code", msg)
	}
	b.open(t, "/events?actor_id=nobody")
	if msg := eval[string](t, b, `(document.querySelector('main .empty') || {}).textContent || ''`); !strings.Contains(msg, "No events match") {
		t.Errorf("an empty result shows %q, want words saying nothing matched", msg)
	}
}
