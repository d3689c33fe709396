package capturetest

import (
	"cmp"
	"net/http"
	"regexp"
	"sync"
	"testing"

	"github.com/agenttrail/agenttrail"
)

// The trace context tests send as an agent's: Traceparent names the span
// ParentSpanID in the trace TraceID; BadTraceparent is malformed (version 00
// allows no fifth field), so a surface must ignore it and start a new trace.
const (
	TraceID        = "4bf92f3577b34da6a3ce929d0e0e4736"
	ParentSpanID   = "00f067aa0ba902b7"
	Traceparent    = "00-" + TraceID + "-" + ParentSpanID + "-01"
	BadTraceparent = Traceparent + "-extra"
	Tracestate     = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"
)

var spanIDPattern = regexp.MustCompile(`^[0-9a-f]{16}$`)
var traceIDPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

// CheckTrace checks that e records the span of a call whose agent sent the
// traceparent sent (Traceparent, BadTraceparent, or "" for none): a child of
// ParentSpanID in TraceID for Traceparent, the root of a new trace
// otherwise. forwarded, unless nil, is the headers the upstream received:
// they must carry a traceparent whose parent is e's span, the tracestate
// unchanged (only with a valid traceparent), and no session header.
func CheckTrace(t *testing.T, e agenttrail.Event, sent string, forwarded http.Header) {
	t.Helper()
	if !spanIDPattern.MatchString(e.SpanID) || e.SpanID == ParentSpanID {
		t.Errorf("span_id = %q, want a new span id", e.SpanID)
	}
	if sent == Traceparent {
		if e.TraceID != TraceID || e.ParentSpanID != ParentSpanID {
			t.Errorf("trace_id, parent_span_id = %q, %q; want %q, %q", e.TraceID, e.ParentSpanID, TraceID, ParentSpanID)
		}
	} else if !traceIDPattern.MatchString(e.TraceID) || e.TraceID == TraceID || e.ParentSpanID != "" {
		t.Errorf("traceparent %q: trace_id, parent_span_id = %q, %q; want a new trace without a parent", sent, e.TraceID, e.ParentSpanID)
	}
	if forwarded == nil {
		return
	}
	if got, want := forwarded.Get("Traceparent"), "00-"+e.TraceID+"-"+e.SpanID+"-01"; got != want {
		t.Errorf("upstream traceparent = %q, want %q (naming the recorded span)", got, want)
	}
	wantState := ""
	if sent == Traceparent {
		wantState = Tracestate
	}
	if got := forwarded.Get("Tracestate"); got != wantState {
		t.Errorf("upstream tracestate = %q, want %q", got, wantState)
	}
	if got := forwarded.Get("X-Agenttrail-Session-Id"); got != "" {
		t.Errorf("upstream X-Agenttrail-Session-Id = %q, want it removed", got)
	}
}

// TraceHeaders returns the headers of an agent's call that sent traceparent
// (and Tracestate), naming session unless it is "".
func TraceHeaders(traceparent, session string) http.Header {
	h := http.Header{}
	if traceparent != "" {
		h.Set("Traceparent", traceparent)
		h.Set("Tracestate", Tracestate)
	}
	if session != "" {
		h.Set("X-Agenttrail-Session-Id", session)
	}
	return h
}

// Headers wraps an upstream handler and keeps the headers of every request
// it serves, for tests to check what a proxy forwarded. It is safe for
// concurrent use.
type Headers struct {
	Next http.Handler
	mu   sync.Mutex
	seen []http.Header
}

// ServeHTTP keeps r's headers and serves r with Next.
func (h *Headers) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.seen = append(h.seen, r.Header.Clone())
	h.mu.Unlock()
	h.Next.ServeHTTP(w, r)
}

// Last returns the headers of the last request served, nil for none.
func (h *Headers) Last() http.Header {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.seen) == 0 {
		return nil
	}
	return h.seen[len(h.seen)-1]
}

// TraceCase is one way an agent sends trace context: a traceparent (valid,
// malformed or none) and the session it names ("" for none).
type TraceCase struct{ Name, Traceparent, Session string }

// TraceCases are the cases every surface is tested with.
var TraceCases = []TraceCase{
	{"valid", Traceparent, "task-7"},
	{"malformed", BadTraceparent, ""},
	{"none", "", ""},
}

// WantSession is the session an event of tc records when the credential's
// default session is def: the one the request names wins.
func (tc TraceCase) WantSession(def string) string { return cmp.Or(tc.Session, def) }
