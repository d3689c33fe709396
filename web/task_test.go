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

// TestConsolePivotsToOneTask opens an event of a task in the detail panel
// and follows its pivots: "This trace" lists the trace's events, across
// surfaces and oldest first, as the API answers them; "This session" the
// session's, which span two traces. The trace and session columns show,
// and the filter bar holds the pivot's filter, so it can be edited.
func TestConsolePivotsToOneTask(t *testing.T) {
	srv := servertest.Start(t)
	const trace, other = "4bf92f3577b34da6a3ce929d0e0e4736", "00000000000000000000000000000002"
	sources := []string{"llm-proxy", "mcp-tool", "shell", "k8s-proxy"}
	var evs []map[string]any
	for i := range 8 {
		ev := event(map[string]any{
			"id": fmt.Sprintf("task-%d", i), "time": ago(time.Duration(40-i) * time.Minute),
			"source": sources[i%4], "action": fmt.Sprintf("step-%d", i),
			"trace_id": trace, "span_id": fmt.Sprintf("%016x", i+1), "session_id": "conversation 7",
		})
		if i > 0 {
			ev["parent_span_id"] = fmt.Sprintf("%016x", i)
		}
		if i >= 6 { // the conversation's second task
			ev["trace_id"] = other
		}
		if i%4 == 0 { // the LLM calls
			ev["metadata"] = map[string]any{"llm": map[string]any{"model": "gpt-5", "input_tokens": 100, "output_tokens": 10, "cost_usd": 0.25}}
		}
		evs = append(evs, ev)
	}
	// Noise: another session, and events of no task at all.
	evs = append(evs, event(map[string]any{"id": "elsewhere", "time": ago(30 * time.Minute), "trace_id": "00000000000000000000000000000003",
		"span_id": "0000000000000001", "session_id": "conversation 8", "source": "llm-proxy",
		"metadata": map[string]any{"llm": map[string]any{"model": "gpt-5", "input_tokens": 5, "output_tokens": 1, "cost_usd": 0.75}}}))
	for i := range 5 {
		evs = append(evs, event(map[string]any{"id": fmt.Sprintf("plain-%d", i), "time": ago(time.Duration(i+1) * 7 * time.Minute)}))
	}
	ingest(t, srv, evs...)
	b := newBrowser(t, srv)
	b.signIn(t, server.RoleRead, server.AllOrgs)

	b.open(t, "/events?since=1h&event=task-2")
	b.do(t, chromedp.WaitReady(chromedp.CSS("#pivot-trace")))
	if got := eval[string](t, b, `document.querySelector('#detail dd[data-field="trace_id"]').firstChild.textContent`); got != trace {
		t.Errorf("the detail panel shows trace_id %q, want %q", got, trace)
	}
	b.do(t, chromedp.Click(chromedp.CSS("#pivot-trace")), ready())
	p := b.path(t)
	if !strings.Contains(p, "trace_id="+trace) || !strings.Contains(p, "sort=time") {
		t.Errorf("This trace led to %s, want trace_id=%s and sort=time", p, trace)
	}
	want := []string{"task-0", "task-1", "task-2", "task-3", "task-4", "task-5"}
	var viaAPI apiPage
	api(t, srv, http.MethodGet, "/v1/events?sort=time&trace_id="+trace+"&not_source=audit&not_action=heartbeat", nil, &viaAPI)
	if got := b.pageIDs(t); !slices.Equal(got, want) || !slices.Equal(viaAPI.ids(), want) {
		t.Errorf("This trace shows %v (the API %v), want the trace's events oldest first %v", got, viaAPI.ids(), want)
	}
	heads := eval[[]string](t, b, `[...document.querySelectorAll('table.events thead th')].map((th) => th.textContent)`)
	for _, col := range []string{"Session", "Trace", "Span", "Parent"} {
		if !slices.Contains(heads, col) {
			t.Errorf("a listing of one trace has columns %v, want %s among them", heads, col)
		}
	}
	if got := eval[string](t, b, `document.getElementById('f-trace_id').value`); got != trace {
		t.Errorf("the filter bar's trace field holds %q, want %q", got, trace)
	}
	if !eval[bool](t, b, `document.getElementById('oldest-first').checked`) {
		t.Errorf("the oldest-first box is not ticked on a pivot to a trace")
	}

	// From the trace to its session: both of the conversation's traces.
	b.do(t, chromedp.Click(chromedp.CSS(`table.events tbody tr[data-id="task-3"]`)), ready(),
		chromedp.WaitReady(chromedp.CSS("#pivot-session")), chromedp.Click(chromedp.CSS("#pivot-session")), ready())
	if p := b.path(t); !strings.Contains(p, "session_id=conversation") || strings.Contains(p, "trace_id=") {
		t.Errorf("This session led to %s, want session_id and no trace_id", p)
	}
	want = append(want, "task-6", "task-7")
	if got := b.pageIDs(t); !slices.Equal(got, want) {
		t.Errorf("This session shows %v, want %v", got, want)
	}
	cells := eval[[]string](t, b, `[...document.querySelectorAll('table.events tbody td.trace .id')].map((s) => s.title)`)
	if len(cells) != 8 || cells[0] != trace || cells[7] != other {
		t.Errorf("the trace column holds %v, want each event's full trace id in its tooltip", cells)
	}

	// Typed into the bar, a session filters as the pivot did.
	b.open(t, "/events?since=1h")
	if heads := eval[[]string](t, b, `[...document.querySelectorAll('table.events thead th')].map((th) => th.textContent)`); slices.Contains(heads, "Trace") {
		t.Errorf("a listing of no task shows the task columns: %v", heads)
	}
	b.do(t, chromedp.SendKeys(chromedp.CSS("#f-session_id"), "conversation 8"), chromedp.Click(chromedp.CSS(".filters button[type=submit]")), ready())
	if got := b.pageIDs(t); !slices.Equal(got, []string{"elsewhere"}) {
		t.Errorf("session_id=conversation 8 typed in the bar shows %v, want [elsewhere]", got)
	}

	// The Cost page ranks sessions by what they cost: the two LLM calls of
	// conversation 7, the one of conversation 8, and no row for events of
	// no session.
	b.open(t, "/cost?since=1h")
	b.do(t, chromedp.WaitReady(chromedp.CSS(`table.usage[data-by="session_id"]`)))
	rows := eval[[]string](t, b, `[...document.querySelectorAll('table.usage[data-by="session_id"] tbody tr')].map((r) => r.dataset.key + '=' + r.querySelector('[data-cost]').dataset.cost)`)
	if !slices.Equal(rows, []string{"conversation 8=0.75", "conversation 7=0.5"}) {
		t.Errorf("the Cost page's sessions are %v, want conversation 8 at $0.75, then conversation 7 at $0.50", rows)
	}
	if msgs := b.messages(); len(msgs) > 0 {
		t.Errorf("console messages: %v", msgs)
	}
}
