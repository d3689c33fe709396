package capture

import (
	"context"
	"crypto/rand"
	"net/http"
	"strings"
	"unicode/utf8"

	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/agenttrail/agenttrail"
)

// The W3C Trace Context and Baggage headers, and the agenttrail session
// header and baggage entry. The environment carriers (TRACEPARENT,
// TRACESTATE) follow the OpenTelemetry environment-variable convention.
const (
	HeaderTraceparent = "Traceparent"
	HeaderTracestate  = "Tracestate"
	HeaderBaggage     = "Baggage"
	// HeaderSessionID names the agent's task or conversation. Proxies
	// remove it before forwarding, like HeaderActorID: it is addressed to
	// the trail, not to the upstream.
	HeaderSessionID = "X-Agenttrail-Session-Id"
	// BaggageSessionID is the W3C baggage entry that carries the session
	// when the agent's tracing library sets baggage rather than a header.
	BaggageSessionID = "agenttrail.session_id"
	EnvTraceparent   = "TRACEPARENT"
	EnvTracestate    = "TRACESTATE"
	EnvSessionID     = "AGENTTRAIL_SESSION_ID"
)

// MaxSessionID bounds a session id a surface takes from a request: a longer
// one is cut to this many bytes (at a rune boundary) rather than making the
// event invalid, so a careless header never costs the audit record.
const MaxSessionID = 256

// Span is the trace context of one captured action: the span the surface
// records for it (SpanID), in the trace the caller's span belongs to, with
// the caller's span as its parent. When the caller sent no valid
// traceparent the span starts a new trace and has no parent. The zero
// value is no trace at all; Apply then leaves an event alone.
type Span struct {
	TraceID      trace.TraceID
	SpanID       trace.SpanID
	ParentSpanID trace.SpanID // zero when the span is a trace's root
	Flags        trace.TraceFlags
	// State is the caller's tracestate, forwarded unchanged. It is kept
	// only with a valid traceparent: a new trace starts with none.
	State     string
	SessionID string
}

// propagator parses traceparent by the W3C Trace Context rules the
// OpenTelemetry API implements (version 00 and later versions' prefixes,
// lowercase hex, all-zero ids invalid), so the trail accepts exactly what
// OpenTelemetry SDKs accept.
var propagator = propagation.TraceContext{}

// NewSpan starts the span of an action whose caller sent the carrier's
// traceparent and tracestate (nil or empty for none): a child of the
// caller's span, or the root of a new trace when traceparent is absent or
// malformed. A malformed traceparent is ignored, never an error: the action
// is recorded all the same.
func NewSpan(c propagation.TextMapCarrier) Span {
	var s Span
	if c != nil {
		sc := trace.SpanContextFromContext(propagator.Extract(context.Background(), c))
		if sc.IsValid() {
			s.TraceID, s.ParentSpanID, s.Flags = sc.TraceID(), sc.SpanID(), sc.TraceFlags()
			s.State = c.Get("tracestate")
		}
	}
	if !s.TraceID.IsValid() {
		s.TraceID = newTraceID()
		s.Flags = trace.FlagsSampled
	}
	s.SpanID = newSpanID()
	return s
}

// SpanFromRequest starts the span of the HTTP request whose headers are h:
// NewSpan over its traceparent and tracestate, with the session from the
// X-Agenttrail-Session-Id header or else the baggage entry
// agenttrail.session_id. Several traceparent headers are malformed by the
// W3C rules, so they start a new trace.
func SpanFromRequest(h http.Header) Span {
	var c propagation.TextMapCarrier = propagation.HeaderCarrier(h)
	if len(h.Values(HeaderTraceparent)) != 1 {
		c = nil
	}
	s := NewSpan(c)
	if s.State != "" {
		// Several tracestate headers are one list (RFC 9110 §5.3).
		s.State = strings.Join(h.Values(HeaderTracestate), ",")
	}
	s.SessionID = SessionFromRequest(h)
	return s
}

// SessionFromRequest returns the session h names: the X-Agenttrail-Session-Id
// header, else the baggage entry agenttrail.session_id, else "".
func SessionFromRequest(h http.Header) string {
	if v := strings.TrimSpace(h.Get(HeaderSessionID)); v != "" {
		return CleanSessionID(v)
	}
	if vv := h.Values(HeaderBaggage); len(vv) > 0 {
		// Parse keeps the members it can read when others are malformed.
		b, _ := baggage.Parse(strings.Join(vv, ","))
		return CleanSessionID(b.Member(BaggageSessionID).Value())
	}
	return ""
}

// SpanFromEnv starts the span of a process whose environment lookup is
// getenv: NewSpan over TRACEPARENT and TRACESTATE, with the session from
// AGENTTRAIL_SESSION_ID.
func SpanFromEnv(getenv func(string) string) Span {
	s := NewSpan(propagation.MapCarrier{
		"traceparent": getenv(EnvTraceparent),
		"tracestate":  getenv(EnvTracestate),
	})
	s.SessionID = CleanSessionID(strings.TrimSpace(getenv(EnvSessionID)))
	return s
}

// Traceparent returns the traceparent that names s as the parent: what the
// surface forwards, so the next hop's spans are children of the one it
// records.
func (s Span) Traceparent() string {
	if !s.TraceID.IsValid() {
		return ""
	}
	return "00-" + s.TraceID.String() + "-" + s.SpanID.String() + "-" + s.Flags.String()
}

// Forward sets the headers of the request a proxy sends upstream: a
// traceparent naming s, the caller's tracestate unchanged (none for a new
// trace), and no X-Agenttrail-Session-Id. Baggage passes as it is.
func (s Span) Forward(h http.Header) {
	h.Del(HeaderSessionID)
	if !s.TraceID.IsValid() {
		return
	}
	h.Set(HeaderTraceparent, s.Traceparent())
	h.Del(HeaderTracestate)
	if s.State != "" {
		h.Set(HeaderTracestate, s.State)
	}
}

// Environ returns env (KEY=VALUE entries) for a child process of the action
// s is the span of: TRACEPARENT naming s and TRACESTATE the caller's (none
// for a new trace), so what the child runs joins the trace as s's children.
// Everything else, AGENTTRAIL_SESSION_ID included, passes unchanged.
func (s Span) Environ(env []string) []string {
	out := make([]string, 0, len(env)+2)
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if k != EnvTraceparent && k != EnvTracestate {
			out = append(out, kv)
		}
	}
	if !s.TraceID.IsValid() {
		return out
	}
	out = append(out, EnvTraceparent+"="+s.Traceparent())
	if s.State != "" {
		out = append(out, EnvTracestate+"="+s.State)
	}
	return out
}

// Apply records s on e: its trace, its span, its parent, and its session
// when it has one (a session named by the request wins over the
// credential's default that Actor.Apply sets).
func (s Span) Apply(e *agenttrail.Event) {
	if !s.TraceID.IsValid() {
		return
	}
	e.TraceID, e.SpanID = s.TraceID.String(), s.SpanID.String()
	e.ParentSpanID = ""
	if s.ParentSpanID.IsValid() {
		e.ParentSpanID = s.ParentSpanID.String()
	}
	if s.SessionID != "" {
		e.SessionID = s.SessionID
	}
}

// CleanSessionID makes v a session id every event accepts: control
// characters and invalid UTF-8 dropped (a percent-decoded baggage value may
// hold any byte), then cut to MaxSessionID bytes at a rune boundary.
func CleanSessionID(v string) string {
	v = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			return -1
		}
		return r
	}, v)
	if len(v) <= MaxSessionID {
		return v
	}
	return strings.ToValidUTF8(v[:MaxSessionID], "")
}

func newTraceID() trace.TraceID {
	var id trace.TraceID
	for !id.IsValid() {
		_, _ = rand.Read(id[:])
	}
	return id
}

func newSpanID() trace.SpanID {
	var id trace.SpanID
	for !id.IsValid() {
		_, _ = rand.Read(id[:])
	}
	return id
}
