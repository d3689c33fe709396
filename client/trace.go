package client

import (
	"context"

	"github.com/agenttrail/agenttrail"
	"go.opentelemetry.io/otel/trace"
)

// FromContext fills e's trace context from the OpenTelemetry span in ctx
// (trace.SpanContextFromContext), when e has no trace_id of its own and ctx
// holds a valid span context, local or remote: TraceID becomes the span's
// trace, and SpanID, when e has none, the span itself, the operation within
// which the action was recorded, unless e names that span as its parent.
// An event that names its own trace keeps it whole, and ctx without a span
// changes nothing. It needs the OpenTelemetry API only: whichever SDK (or
// none) the agent runs, a span put in ctx is found.
func FromContext(ctx context.Context, e *agenttrail.Event) {
	if e.TraceID != "" || ctx == nil {
		return
	}
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return
	}
	e.TraceID = sc.TraceID().String()
	if span := sc.SpanID().String(); e.SpanID == "" && e.ParentSpanID != span {
		e.SpanID = span
	}
}
