package otlp_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/capture/capturetest"
	"github.com/agenttrail/agenttrail/servertest"
)

// decodeStatus decodes an OTLP error answer, in the encoding its
// Content-Type names.
func decodeStatus(t *testing.T, resp *http.Response, b []byte) *statuspb.Status {
	t.Helper()
	st := &statuspb.Status{}
	var err error
	switch ct := resp.Header.Get("Content-Type"); ct {
	case "application/x-protobuf":
		err = proto.Unmarshal(b, st)
	case "application/json":
		err = protojson.Unmarshal(b, st)
	default:
		t.Fatalf("answer Content-Type %q, body %q", ct, b)
	}
	if err != nil {
		t.Fatalf("answer %q is not a google.rpc.Status: %v", b, err)
	}
	return st
}

func span(trace, id []byte, name string, start time.Time) *tracepb.Span {
	return &tracepb.Span{
		TraceId: trace, SpanId: id, Name: name,
		StartTimeUnixNano: uint64(start.UnixNano()), EndTimeUnixNano: uint64(start.Add(time.Second).UnixNano()),
		Attributes: []*commonpb.KeyValue{{Key: "gen_ai.operation.name", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "chat"}}}},
	}
}

// TestBadSpansRejectedByIndex: in one request, spans the mapper refuses
// (bad ids, no start) and a span the write path refuses (a time far in the
// future) are named by their index across resources in the partial
// success; the others are stored.
func TestBadSpansRejectedByIndex(t *testing.T) {
	srv := servertest.Start(t)
	tok := ingestToken(t, srv, "acme")
	now := time.Now()
	trace := []byte("0123456789abcdef")
	noStart := span(trace, []byte("span0004"), "no start", now)
	noStart.StartTimeUnixNano = 0
	req := &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{
		{ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{
			span(trace, []byte("span0000"), "good 0", now),
			span([]byte("shor"), []byte("span0001"), "short trace id", now),
		}}}},
		{ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{
			span(trace, []byte("span0002"), "good 2", now),
			span(trace, make([]byte, 8), "zero span id", now),
			noStart,
			span(trace, []byte("span0005"), "future", now.Add(72*time.Hour)),
			span(trace, []byte("span0006"), "good 6", now),
		}}}},
	}}
	for _, enc := range []string{"application/x-protobuf", "application/json"} {
		var body []byte
		var err error
		if enc == "application/json" {
			body, err = protojson.Marshal(req) // base64 ids: rewritten below as OTLP JSON writes them
			body = []byte(strings.NewReplacer(
				`"MDEyMzQ1Njc4OWFiY2RlZg=="`, `"30313233343536373839616263646566"`,
				`"c2hvcg=="`, `"73686f72"`,
				`"c3BhbjAwMDA="`, `"7370616e30303030"`, `"c3BhbjAwMDE="`, `"7370616e30303031"`,
				`"c3BhbjAwMDI="`, `"7370616e30303032"`, `"AAAAAAAAAAA="`, `"0000000000000000"`,
				`"c3BhbjAwMDQ="`, `"7370616e30303034"`, `"c3BhbjAwMDU="`, `"7370616e30303035"`,
				`"c3BhbjAwMDY="`, `"7370616e30303036"`,
			).Replace(string(body)))
		} else {
			body, err = proto.Marshal(req)
		}
		if err != nil {
			t.Fatal(err)
		}
		resp, b := post(t, srv, tok, "/v1/otlp/v1/traces", enc, "", body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d: %s", enc, resp.StatusCode, b)
		}
		var answer coltracepb.ExportTraceServiceResponse
		if enc == "application/json" {
			err = protojson.Unmarshal(b, &answer)
		} else {
			err = proto.Unmarshal(b, &answer)
		}
		if err != nil {
			t.Fatal(err)
		}
		ps := answer.GetPartialSuccess()
		msg := ps.GetErrorMessage()
		if ps.GetRejectedSpans() != 4 {
			t.Errorf("%s: rejected %d spans (%q), want 4", enc, ps.GetRejectedSpans(), msg)
		}
		for _, want := range []string{"span 1: trace_id: must be 16 bytes, not 4", "span 3: span_id: must not be all zeros", "span 4: start_time_unix_nano: is required", "span 5: time:"} {
			if !strings.Contains(msg, want) {
				t.Errorf("%s: error_message %q does not say %q", enc, msg, want)
			}
		}
	}
	// Both encodings carried the same spans: the second stored nothing new.
	events := capturetest.WaitEvents(t, srv.Store, agenttrail.Filter{Source: otelSources}, 3)
	for i, want := range []string{"7370616e30303030", "7370616e30303032", "7370616e30303036"} {
		if events[i].SpanID != want {
			t.Errorf("stored span %d = %s, want %s", i, events[i].SpanID, want)
		}
	}
}
