package server

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/wire"
)

// TestFollowOneTask reads one task the way an investigator does: the
// events of one trace in time order, paged, whatever case the trace id was
// sent and asked in; the events of one session; and the aggregation of
// cost by session and by trace.
func TestFollowOneTask(t *testing.T) { forEachStore(t, testFollowOneTask) }

func testFollowOneTask(t *testing.T, o options) {
	o.now = testNow
	e := newEnv(t, o)
	const trace = "4BF92F3577B34DA6A3CE929D0E0E4736" // sent in upper case
	at := testNow.Add(-time.Hour)
	var events []agenttrail.Event
	add := func(id string, sec int, span, parent, session string, source string) {
		events = append(events, agenttrail.Event{ID: id, Time: at.Add(time.Duration(sec) * time.Second),
			ActorType: agenttrail.ActorAgent, ActorID: "agent-1", Source: source, Action: "step " + id,
			Result: agenttrail.ResultSuccess, TraceID: trace, SpanID: span, ParentSpanID: parent, SessionID: session})
	}
	// Posted out of time order, so that time order is not commit order.
	add("c", 30, "00000000000000c0", "00000000000000a0", "task-7", agenttrail.SourceShell)
	add("a", 10, "00000000000000a0", "", "task-7", agenttrail.SourceLLM)
	add("d", 40, "00000000000000d0", "00000000000000c0", "task-7", agenttrail.SourceKube)
	add("b", 20, "00000000000000b0", "00000000000000a0", "task-7", agenttrail.SourceMCP)
	other := events[0]
	other.ID, other.TraceID, other.SessionID = "other", "00000000000000000000000000000001", "task-8"
	events = append(events, other, agenttrail.Event{ID: "untraced", Time: at, ActorType: agenttrail.ActorAgent,
		ActorID: "agent-1", Source: "shell", Action: "ls", Result: agenttrail.ResultSuccess})
	e.ingest(t, events)

	lower := strings.ToLower(trace)
	for _, q := range []string{lower, trace} {
		got := e.pageAll(t, "/v1/events?limit=1&sort=time&trace_id="+q, nil)
		var order []string
		for _, ev := range got {
			order = append(order, ev.ID)
			if ev.TraceID != lower {
				t.Errorf("event %s trace_id = %q, want %q (stored in lowercase)", ev.ID, ev.TraceID, lower)
			}
		}
		if strings.Join(order, ",") != "a,b,c,d" {
			t.Errorf("GET /v1/events?sort=time&trace_id=%s in pages of 1 = %v, want a,b,c,d", q, order)
		}
	}
	var page wire.Page
	e.getJSON(t, "/v1/events?session_id=task-8&session_id=task-9", &page)
	if len(page.Events) != 1 || page.Events[0].ID != "other" {
		t.Errorf("GET /v1/events?session_id=task-8&session_id=task-9 = %d events, want the one of task-8", len(page.Events))
	}
	if r := e.get(t, "/v1/events?trace_id=4bf92f35-77b3-4da6-a3ce-929d0e0e4736"); r.status != http.StatusBadRequest ||
		!strings.Contains(string(r.body), "trace_id") {
		t.Errorf("GET /v1/events?trace_id=<a UUID> = %d %s, want 400 naming trace_id", r.status, r.body)
	}
	for _, c := range []struct {
		by   string
		want map[string]int64
	}{
		{"session_id", map[string]int64{"task-7": 4, "task-8": 1, "": 1}},
		{"trace_id", map[string]int64{lower: 4, "00000000000000000000000000000001": 1, "": 1}},
	} {
		var agg wire.Aggregate
		e.getJSON(t, "/v1/aggregate?by="+c.by+"&not_source=audit", &agg)
		got := map[string]int64{}
		for _, b := range agg.Buckets {
			got[b.Key] = b.Count
		}
		if len(got) != len(c.want) {
			t.Errorf("GET /v1/aggregate?by=%s = %v, want %v", c.by, got, c.want)
		}
		for k, n := range c.want {
			if got[k] != n {
				t.Errorf("GET /v1/aggregate?by=%s: %q counts %d, want %d", c.by, k, got[k], n)
			}
		}
	}
}
