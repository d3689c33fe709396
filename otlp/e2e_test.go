package otlp_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otellog "go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/capture/capturetest"
	"github.com/agenttrail/agenttrail/capture/llm"
	"github.com/agenttrail/agenttrail/servertest"
	"github.com/agenttrail/agenttrail/wire"
)

// ingestToken creates an ingest token of org through the API.
func ingestToken(t *testing.T, srv *servertest.Server, org string) string {
	t.Helper()
	body, _ := json.Marshal(wire.TokenRequest{Name: "otel-" + org, Role: "ingest", Org: org})
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/tokens", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+srv.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var nt wire.NewToken
	if err := json.NewDecoder(resp.Body).Decode(&nt); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("create token: %d, %v", resp.StatusCode, err)
	}
	return nt.Secret
}

// wantCost is the price table's cost of l.
func wantCost(t *testing.T, l agenttrail.LLM) float64 {
	t.Helper()
	prices, err := llm.DefaultPrices()
	if err != nil {
		t.Fatal(err)
	}
	_, p, ok := prices.Lookup(l.Model)
	if !ok {
		t.Fatalf("no price for %s", l.Model)
	}
	return p.Cost(l)
}

var otelSources = []string{agenttrail.SourceLLM, agenttrail.SourceMCP, agenttrail.SourceEgress, agenttrail.SourceShell, "otel"}

// TestTracesFromSDK: the OpenTelemetry Go SDK's OTLP/HTTP trace exporter, in
// protobuf and in JSON, gzip-compressed, sends a GenAI agent's spans; each
// becomes the event its semantic conventions say, with the span's trace,
// span and parent ids, the org of the token, and for the model call the
// tokens and the cost of the price table.
func TestTracesFromSDK(t *testing.T) {
	for _, enc := range []struct {
		name string
		opt  otlptracehttp.Option
	}{
		{"protobuf", otlptracehttp.WithEncoding(otlptracehttp.EncodingProtobuf)},
		{"json", otlptracehttp.WithEncoding(otlptracehttp.EncodingJSON)},
	} {
		t.Run(enc.name, func(t *testing.T) {
			ctx := context.Background()
			srv := servertest.Start(t)
			tok := ingestToken(t, srv, "acme")
			exp, err := otlptracehttp.New(ctx, enc.opt,
				otlptracehttp.WithEndpointURL(srv.URL+"/v1/otlp/v1/traces"),
				otlptracehttp.WithHeaders(map[string]string{"Authorization": "Bearer " + tok}),
				otlptracehttp.WithCompression(otlptracehttp.GzipCompression),
				otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}))
			if err != nil {
				t.Fatal(err)
			}
			tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithResource(resource.NewSchemaless(
				attribute.String("service.name", "support-bot"), attribute.String("gen_ai.agent.id", "agent-support"))))
			tr := tp.Tracer("agent")

			ctx, root := tr.Start(ctx, "invoke_agent support", trace.WithAttributes(
				attribute.String("gen_ai.operation.name", "invoke_agent"), attribute.String("gen_ai.conversation.id", "conv-42")))
			_, chat := tr.Start(ctx, "chat gpt-4o-mini", trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
				attribute.String("gen_ai.operation.name", "chat"), attribute.String("gen_ai.provider.name", "openai"),
				attribute.String("gen_ai.request.model", "gpt-4o-mini"), attribute.String("gen_ai.response.model", "gpt-4o-mini-2024-07-18"),
				attribute.Int("gen_ai.usage.input_tokens", 1200), attribute.Int("gen_ai.usage.output_tokens", 300),
				attribute.Int("gen_ai.usage.cache_read.input_tokens", 200), attribute.String("gen_ai.conversation.id", "conv-42")))
			chat.End()
			_, tool := tr.Start(ctx, "execute_tool search", trace.WithAttributes(
				attribute.String("gen_ai.operation.name", "execute_tool"), attribute.String("gen_ai.tool.name", "search")))
			tool.End()
			_, get := tr.Start(ctx, "GET", trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
				attribute.String("http.request.method", "GET"), attribute.String("url.full", "https://api.github.com/repos/x/y"),
				attribute.Int("http.response.status_code", 404)))
			get.End()
			_, proc := tr.Start(ctx, "exec", trace.WithAttributes(
				attribute.String("process.command", "kubectl"), attribute.StringSlice("process.command_args", []string{"kubectl", "delete", "pod", "web"}),
				attribute.Int("process.exit.code", 1)))
			proc.End()
			root.End()
			if err := tp.Shutdown(context.Background()); err != nil {
				t.Fatalf("export: %v", err) // a partial success is an error too
			}

			events := capturetest.WaitEvents(t, srv.Store, agenttrail.Filter{Source: otelSources}, 5)
			bySource := map[string]agenttrail.Event{}
			for _, e := range events {
				bySource[e.Source] = e
				if e.TraceID != root.SpanContext().TraceID().String() || e.Org != "acme" || e.ActorID != "agent-support" {
					t.Errorf("%s event: trace %s org %q actor %q; want trace %s, org acme, actor agent-support", e.Source, e.TraceID, e.Org, e.ActorID, root.SpanContext().TraceID())
				}
				if e.Source != "otel" && e.ParentSpanID != root.SpanContext().SpanID().String() {
					t.Errorf("%s event: parent %s, want the root span %s", e.Source, e.ParentSpanID, root.SpanContext().SpanID())
				}
			}
			e := bySource[agenttrail.SourceLLM]
			if e.Action != "chat" || e.ResourceID != "gpt-4o-mini-2024-07-18" || e.SpanID != chat.SpanContext().SpanID().String() || e.SessionID != "conv-42" || e.Result != agenttrail.ResultSuccess {
				t.Errorf("llm event = %+v", e)
			}
			l, ok := e.LLM()
			want := agenttrail.LLM{Provider: "openai", Model: "gpt-4o-mini-2024-07-18", InputTokens: 1000, OutputTokens: 300, CacheReadTokens: 200}
			cost := wantCost(t, want)
			if !ok || l.CostUSD == nil || *l.CostUSD != cost {
				t.Fatalf("metadata.llm = %s, want cost %v", e.Metadata, cost)
			}
			l.CostUSD = nil
			if l != want {
				t.Errorf("metadata.llm = %+v, want %+v", l, want)
			}
			if e := bySource[agenttrail.SourceMCP]; e.Action != "tools/call" || e.ResourceID != "search" {
				t.Errorf("tool event = %s %s/%s", e.Action, e.ResourceType, e.ResourceID)
			}
			if e := bySource[agenttrail.SourceEgress]; e.Action != "GET https://api.github.com/repos/x/y" || e.ResourceID != "api.github.com" || e.StatusCode != 404 || e.Result != agenttrail.ResultFailure {
				t.Errorf("http event = %s %s %d %s", e.Action, e.ResourceID, e.StatusCode, e.Result)
			}
			if e := bySource[agenttrail.SourceShell]; e.ResourceID != "kubectl delete pod web" || e.Result != agenttrail.ResultFailure {
				t.Errorf("shell event = %s %s", e.ResourceID, e.Result)
			}
			if e := bySource["otel"]; e.Action != "invoke_agent support" || e.ParentSpanID != "" || e.SpanID != root.SpanContext().SpanID().String() {
				t.Errorf("root event = %s span %s parent %q", e.Action, e.SpanID, e.ParentSpanID)
			}
		})
	}
}

// TestLogsFromSDK: the SDK's OTLP/HTTP log exporter sends a GenAI event
// emitted inside a span; it arrives as an llm-proxy event with tokens and
// cost, a child of that span.
func TestLogsFromSDK(t *testing.T) {
	ctx := context.Background()
	srv := servertest.Start(t)
	tok := ingestToken(t, srv, "acme")
	exp, err := otlploghttp.New(ctx,
		otlploghttp.WithEndpointURL(srv.URL+"/v1/otlp/v1/logs"),
		otlploghttp.WithHeaders(map[string]string{"Authorization": "Bearer " + tok}),
		otlploghttp.WithCompression(otlploghttp.GzipCompression),
		otlploghttp.WithRetry(otlploghttp.RetryConfig{Enabled: false}))
	if err != nil {
		t.Fatal(err)
	}
	lp := sdklog.NewLoggerProvider(sdklog.WithProcessor(sdklog.NewSimpleProcessor(exp)),
		sdklog.WithResource(resource.NewSchemaless(attribute.String("service.name", "review-bot"))))
	tp := sdktrace.NewTracerProvider()
	sctx, span := tp.Tracer("agent").Start(ctx, "chat")
	var r otellog.Record
	r.SetEventName("gen_ai.client.inference.operation.details")
	r.SetTimestamp(time.Now())
	r.SetSeverity(otellog.SeverityInfo)
	r.AddAttributes(
		attribute.String("gen_ai.operation.name", "chat"), attribute.String("gen_ai.provider.name", "anthropic"),
		attribute.String("gen_ai.request.model", "claude-sonnet-4-5"), attribute.String("gen_ai.agent.id", "agent-review"),
		attribute.Int("gen_ai.usage.input_tokens", 5000), attribute.Int("gen_ai.usage.output_tokens", 700),
		attribute.Int("gen_ai.usage.cache_read.input_tokens", 3000), attribute.Int("gen_ai.usage.cache_creation.input_tokens", 1000))
	lp.Logger("agent").Emit(sctx, r)
	span.End()
	if err := lp.Shutdown(ctx); err != nil {
		t.Fatalf("export: %v", err)
	}
	e := capturetest.WaitEvents(t, srv.Store, agenttrail.Filter{Source: otelSources}, 1)[0]
	if e.Source != agenttrail.SourceLLM || e.Action != "chat" || e.ActorID != "agent-review" || e.Org != "acme" {
		t.Errorf("event = %s %s by %s in %s", e.Source, e.Action, e.ActorID, e.Org)
	}
	if e.TraceID != span.SpanContext().TraceID().String() || e.ParentSpanID != span.SpanContext().SpanID().String() || len(e.SpanID) != 16 {
		t.Errorf("trace %s span %s parent %s; want a child of %s", e.TraceID, e.SpanID, e.ParentSpanID, span.SpanContext().SpanID())
	}
	want := agenttrail.LLM{Provider: "anthropic", Model: "claude-sonnet-4-5", InputTokens: 1000, OutputTokens: 700, CacheReadTokens: 3000, CacheWriteTokens: 1000}
	cost := wantCost(t, want)
	l, _ := e.LLM()
	if l.CostUSD == nil || *l.CostUSD != cost {
		t.Fatalf("metadata.llm = %s, want cost %v", e.Metadata, cost)
	}
	l.CostUSD = nil
	if l != want {
		t.Errorf("metadata.llm = %+v, want %+v", l, want)
	}
}

// post sends body to path with an ingest token and returns the answer.
func post(t *testing.T, srv *servertest.Server, tok, path, contentType, encoding string, body []byte) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", contentType)
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// TestMalformedBodies: a body that cannot be decoded is a 400 whose
// google.rpc.Status, in the request's encoding, names the problem; so are a
// bad gzip stream, and a body that inflates past the request limit (413).
func TestMalformedBodies(t *testing.T) {
	srv := servertest.Start(t)
	tok := ingestToken(t, srv, "acme")
	for _, tc := range []struct {
		name, path, contentType, encoding string
		body                              []byte
		status                            int
		want                              string
	}{
		{"protobuf garbage", "/v1/otlp/v1/traces", "application/x-protobuf", "", []byte{0xff, 0xff, 0xff}, 400, "ExportTraceServiceRequest in protobuf"},
		{"json garbage", "/v1/otlp/v1/logs", "application/json", "", []byte(`{"resourceLogs": [`), 400, "is not OTLP JSON"},
		{"json with a wrong type", "/v1/otlp/v1/traces", "application/json", "", []byte(`{"resourceSpans": 7}`), 400, "ExportTraceServiceRequest in JSON"},
		{"json id not hex", "/v1/otlp/v1/traces", "application/json", "", []byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz"}]}]}]}`), 400, "resourceSpans.0.scopeSpans.0.spans.0.traceId"},
		{"not gzip", "/v1/otlp/v1/traces", "application/x-protobuf", "gzip", []byte("plain"), 400, "is not gzip"},
		{"gzip bomb", "/v1/otlp/v1/traces", "application/x-protobuf", "gzip", gzipped(make([]byte, agenttrail.DefaultLimits.MaxRequestBytes+1)), 413, "over the limit"},
		{"other content type", "/v1/otlp/v1/traces", "text/plain", "", []byte("x"), 415, "Content-Type"},
		{"other content encoding", "/v1/otlp/v1/traces", "application/json", "br", []byte("x"), 415, "Content-Encoding"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, b := post(t, srv, tok, tc.path, tc.contentType, tc.encoding, tc.body)
			st := decodeStatus(t, resp, b)
			if resp.StatusCode != tc.status || !strings.Contains(st.GetMessage(), tc.want) {
				t.Errorf("answer %d %q, want %d naming %q", resp.StatusCode, st.GetMessage(), tc.status, tc.want)
			}
		})
	}
}
