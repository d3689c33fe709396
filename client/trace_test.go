package client

import (
	"context"
	"testing"

	"github.com/agenttrail/agenttrail"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// TestRecordTakesTheTraceFromTheContext records under spans of the real
// OpenTelemetry SDK: an event recorded within a span carries its trace and
// span, one within a child span the child's, one that names its own trace
// keeps it, one that names the span as its parent is its child, and one
// recorded without a span has none.
func TestRecordTakesTheTraceFromTheContext(t *testing.T) {
	srv := newIngestServer(t)
	r := newTestRecorder(t, srv.URL(), RecorderConfig{ActorID: "agent-1"})
	tp := sdktrace.NewTracerProvider()
	defer tp.Shutdown(context.Background())
	tracer := tp.Tracer("agenttrail-test")

	ctx, root := tracer.Start(context.Background(), "task")
	childCtx, child := tracer.Start(ctx, "tool call")
	rootSC, childSC := root.SpanContext(), child.SpanContext()
	event := func(id string) agenttrail.Event {
		return agenttrail.Event{ID: id, Source: "shell", Action: id, Result: agenttrail.ResultSuccess}
	}
	own := event("own")
	own.TraceID, own.SpanID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	childOf := event("child-of-root")
	childOf.ParentSpanID = rootSC.SpanID().String()

	r.Record(ctx, event("in-root"))
	r.Record(childCtx, event("in-child"))
	r.Record(ctx, own)
	r.Record(ctx, childOf)
	r.Record(context.Background(), event("no-span"))
	// A span context that arrived from elsewhere (a traceparent header)
	// with no SDK span around it.
	remote := trace.ContextWithRemoteSpanContext(context.Background(), childSC)
	r.Record(remote, event("remote"))
	child.End()
	root.End()
	closeRecorder(t, r)

	got := map[string]agenttrail.Event{}
	for _, e := range srv.stored() {
		got[e.ID] = e
	}
	traceID, rootSpan, childSpan := rootSC.TraceID().String(), rootSC.SpanID().String(), childSC.SpanID().String()
	for _, c := range []struct{ id, trace, span, parent string }{
		{"in-root", traceID, rootSpan, ""},
		{"in-child", traceID, childSpan, ""},
		{"own", "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", ""},
		{"child-of-root", traceID, "", rootSpan},
		{"no-span", "", "", ""},
		{"remote", traceID, childSpan, ""},
	} {
		e, ok := got[c.id]
		if !ok {
			t.Errorf("event %s was not stored", c.id)
			continue
		}
		if e.TraceID != c.trace || e.SpanID != c.span || e.ParentSpanID != c.parent {
			t.Errorf("event %s trace/span/parent = %q %q %q, want %q %q %q", c.id, e.TraceID, e.SpanID, e.ParentSpanID, c.trace, c.span, c.parent)
		}
	}
}
