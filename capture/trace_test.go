package capture

import (
	"net/http"
	"strings"
	"testing"

	"github.com/agenttrail/agenttrail"
)

const (
	tpTrace  = "4bf92f3577b34da6a3ce929d0e0e4736"
	tpParent = "00f067aa0ba902b7"
	tpValid  = "00-" + tpTrace + "-" + tpParent + "-01"
)

func TestSpanFromRequest(t *testing.T) {
	for _, tc := range []struct {
		name        string
		traceparent []string
		tracestate  []string
		wantParent  bool // the span is a child of tpParent in tpTrace
		wantState   string
	}{
		{"valid", []string{tpValid}, []string{"congo=t61rcWkgMzE"}, true, "congo=t61rcWkgMzE"},
		{"valid, several tracestate headers", []string{tpValid}, []string{"a=1", "b=2"}, true, "a=1,b=2"},
		{"valid, not sampled", []string{"00-" + tpTrace + "-" + tpParent + "-00"}, nil, true, ""},
		{"future version with extra fields", []string{"01-" + tpTrace + "-" + tpParent + "-01-what-the-future-holds"}, nil, true, ""},
		{"absent", nil, []string{"congo=t61rcWkgMzE"}, false, ""},
		{"uppercase hex", []string{"00-" + strings.ToUpper(tpTrace) + "-" + tpParent + "-01"}, nil, false, ""},
		{"all-zero trace id", []string{"00-00000000000000000000000000000000-" + tpParent + "-01"}, []string{"a=1"}, false, ""},
		{"all-zero parent id", []string{"00-" + tpTrace + "-0000000000000000-01"}, nil, false, ""},
		{"version ff", []string{"ff-" + tpTrace + "-" + tpParent + "-01"}, nil, false, ""},
		{"version 00 with extra field", []string{tpValid + "-extra"}, nil, false, ""},
		{"short trace id", []string{"00-" + tpTrace[1:] + "-" + tpParent + "-01"}, nil, false, ""},
		{"not hex", []string{"00-" + strings.Repeat("z", 32) + "-" + tpParent + "-01"}, nil, false, ""},
		{"garbage", []string{"hello"}, nil, false, ""},
		{"two traceparent headers", []string{tpValid, tpValid}, nil, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for _, v := range tc.traceparent {
				h.Add("traceparent", v)
			}
			for _, v := range tc.tracestate {
				h.Add("tracestate", v)
			}
			s := SpanFromRequest(h)
			if !s.TraceID.IsValid() || !s.SpanID.IsValid() {
				t.Fatalf("span %+v has no valid trace or span id", s)
			}
			if tc.wantParent {
				if s.TraceID.String() != tpTrace || s.ParentSpanID.String() != tpParent {
					t.Errorf("trace, parent = %s, %s; want %s, %s", s.TraceID, s.ParentSpanID, tpTrace, tpParent)
				}
			} else if s.TraceID.String() == tpTrace || s.ParentSpanID.IsValid() {
				t.Errorf("trace, parent = %s, %s; want a new trace without a parent", s.TraceID, s.ParentSpanID)
			}
			if s.SpanID.String() == tpParent {
				t.Errorf("span id = the caller's span id; want a new one")
			}
			if s.State != tc.wantState {
				t.Errorf("state = %q, want %q", s.State, tc.wantState)
			}

			out := http.Header{"X-Agenttrail-Session-Id": {"s"}, "Tracestate": {"stale=1"}}
			s.Forward(out)
			want := "00-" + s.TraceID.String() + "-" + s.SpanID.String() + "-" + s.Flags.String()
			if got := out.Get("traceparent"); got != want {
				t.Errorf("forwarded traceparent = %q, want %q", got, want)
			}
			if got := strings.Join(out.Values("tracestate"), ","); got != tc.wantState {
				t.Errorf("forwarded tracestate = %q, want %q", got, tc.wantState)
			}
			if out.Get(HeaderSessionID) != "" {
				t.Errorf("X-Agenttrail-Session-Id forwarded")
			}
		})
	}
}

func TestSpanIDsDiffer(t *testing.T) {
	a, b := SpanFromRequest(http.Header{}), SpanFromRequest(http.Header{})
	if a.TraceID == b.TraceID || a.SpanID == b.SpanID {
		t.Errorf("two new traces share ids: %+v, %+v", a, b)
	}
}

func TestSession(t *testing.T) {
	long := strings.Repeat("é", MaxSessionID) // 2 bytes each
	for _, tc := range []struct {
		name string
		h    http.Header
		want string
	}{
		{"none", http.Header{}, ""},
		{"header", http.Header{"X-Agenttrail-Session-Id": {"task-7"}}, "task-7"},
		{"baggage", http.Header{"Baggage": {"userId=alice,agenttrail.session_id=task%208;p=1"}}, "task 8"},
		{"baggage over two headers", http.Header{"Baggage": {"userId=alice", "agenttrail.session_id=t9"}}, "t9"},
		{"baggage with a malformed member", http.Header{"Baggage": {"=bad,agenttrail.session_id=t10"}}, "t10"},
		{"header wins over baggage", http.Header{"X-Agenttrail-Session-Id": {"h"}, "Baggage": {"agenttrail.session_id=b"}}, "h"},
		{"control characters dropped", http.Header{"Baggage": {"agenttrail.session_id=a%0Ab%00c%7F"}}, "abc"},
		{"over the bound, cut at a rune", http.Header{"X-Agenttrail-Session-Id": {long}}, long[:MaxSessionID]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := SpanFromRequest(tc.h).SessionID; got != tc.want {
				t.Errorf("session = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSpanFromEnv(t *testing.T) {
	env := map[string]string{"TRACEPARENT": tpValid, "TRACESTATE": "k=v", "AGENTTRAIL_SESSION_ID": "task-1"}
	s := SpanFromEnv(func(k string) string { return env[k] })
	if s.TraceID.String() != tpTrace || s.ParentSpanID.String() != tpParent || s.State != "k=v" || s.SessionID != "task-1" {
		t.Errorf("SpanFromEnv = %+v", s)
	}
	env["TRACEPARENT"] = "00-bad"
	if s := SpanFromEnv(func(k string) string { return env[k] }); s.TraceID.String() == tpTrace || s.ParentSpanID.IsValid() || s.State != "" {
		t.Errorf("SpanFromEnv with a malformed TRACEPARENT = %+v, want a new trace", s)
	}
}

func TestSpanApply(t *testing.T) {
	s := SpanFromRequest(http.Header{"Traceparent": {tpValid}, "X-Agenttrail-Session-Id": {"asked"}})
	e := agenttrail.Event{}
	Actor{ID: "a", Session: "default"}.Apply(&e)
	s.Apply(&e)
	if e.TraceID != tpTrace || e.ParentSpanID != tpParent || e.SpanID != s.SpanID.String() || e.SessionID != "asked" {
		t.Errorf("event = %+v", e)
	}
	e = agenttrail.Event{}
	Actor{ID: "a", Session: "default"}.Apply(&e)
	SpanFromRequest(http.Header{}).Apply(&e)
	if e.SessionID != "default" || e.ParentSpanID != "" || len(e.TraceID) != 32 || len(e.SpanID) != 16 {
		t.Errorf("event of a new trace = %+v, want the credential's session and no parent", e)
	}
	e = agenttrail.Event{TraceID: "keep"}
	Span{}.Apply(&e)
	if e.TraceID != "keep" {
		t.Errorf("the zero Span changed the event: %+v", e)
	}
}

// TestDefaultSession: a credential's own session wins over the proxy's
// default (--session), which fills in for credentials without one and for
// requests that present none.
func TestDefaultSession(t *testing.T) {
	ids := &Identities{Default: Actor{ID: "default-agent", Session: "run-1"}}
	ids.Add("own", Actor{ID: "a", Session: "nightly"})
	ids.Add("none", Actor{ID: "b"})
	for cred, want := range map[string]string{"own": "nightly", "none": "run-1", "": "run-1"} {
		if got := ids.Resolve(cred, nil).Session; got != want {
			t.Errorf("Resolve(%q).Session = %q, want %q", cred, got, want)
		}
	}
}

// BenchmarkSpan is what trace context adds to one proxied request: reading
// the agent's traceparent, tracestate and baggage, and setting the
// forwarded headers.
func BenchmarkSpan(b *testing.B) {
	in := http.Header{"Traceparent": {tpValid}, "Tracestate": {"congo=t61rcWkgMzE"}, "Baggage": {"userId=alice,agenttrail.session_id=task-7"}}
	out := http.Header{}
	b.ReportAllocs()
	for b.Loop() {
		s := SpanFromRequest(in)
		s.Forward(out)
	}
}
