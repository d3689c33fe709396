package web_test

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/agenttrail/agenttrail/server"
	"github.com/agenttrail/agenttrail/servertest"
)

// TestConsoleOrgScope signs in with a session of one org: the console shows
// that org's events only, as the API does for the same token, and offers no
// org filter.
func TestConsoleOrgScope(t *testing.T) {
	srv := servertest.Start(t)
	var evs []map[string]any
	for i, org := range []string{"acme", "globex", "acme", "globex"} {
		evs = append(evs, event(map[string]any{"org": org, "actor_id": "agent-" + org, "description": org + " work", "duration_ms": i}))
	}
	ingest(t, srv, evs...)
	b := newBrowser(t, srv)
	b.signIn(t, server.RoleRead, "acme")
	b.open(t, "/events?org=globex&org=acme&since=1h&source=shell")
	if eval[bool](t, b, `!!document.getElementById('f-org')`) {
		t.Errorf("a session of one org is offered an org filter")
	}
	token := eval[string](t, b, `sessionStorage.getItem('agenttrail.token')`)
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/events?org=globex&org=acme&since=1h&source=shell&limit=50", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var page apiPage
	if err := json.Unmarshal(body, &page); err != nil {
		t.Fatal(err)
	}
	got := b.pageIDs(t)
	if !slices.Equal(got, page.ids()) || len(got) != 2 {
		t.Errorf("the acme session shows %v, the API answers its token %v; want acme's 2 events", got, page.ids())
	}
	if text := eval[string](t, b, `document.getElementById('main').textContent`); strings.Contains(text, "globex") {
		t.Errorf("the acme session's page mentions globex")
	}
	b.open(t, "/overview?since=1h")
	if text := eval[string](t, b, `document.getElementById('main').textContent`); strings.Contains(text, "globex") {
		t.Errorf("the acme session's overview mentions globex")
	}
}

// TestConsoleDownload downloads the current filter as CSV and NDJSON: the
// files are what GET /v1/export answers for the same filter.
func TestConsoleDownload(t *testing.T) {
	srv := servertest.Start(t)
	seedVaried(t, srv, 40)
	b := newBrowser(t, srv)
	b.signIn(t, server.RoleRead, server.AllOrgs)
	filter := query("actor_id", "agent-1", "since", "7d")
	b.open(t, "/events?"+filter)
	b.do(t, chromedp.Evaluate[chromedp.Void](`window.__blobs = []; { const o = URL.createObjectURL; URL.createObjectURL = (x) => { window.__blobs.push(x); return o(x); }; }`))
	for i, format := range []string{"csv", "ndjson"} {
		b.do(t, chromedp.Click(chromedp.CSS(`button[data-format="`+format+`"]`)))
		ctxPoll := chromedp.Poll[bool](`window.__blobs.length > `+string(rune('0'+i)), chromedp.WithPollingTimeout(10e9))
		if _, err := chromedp.Run(b.ctx, ctxPoll); err != nil {
			t.Fatalf("no %s download: %v", format, err)
		}
		got, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`window.__blobs[`+string(rune('0'+i))+`].text()`, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/export?format="+format+"&"+filter, nil)
		req.Header.Set("Authorization", "Bearer "+srv.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if got != string(want) || strings.Count(got, "agent-1") < 10 {
			t.Errorf("the %s download (%d bytes) differs from the API's export (%d bytes)", format, len(got), len(want))
		}
	}
}
