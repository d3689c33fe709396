package mcp

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agenttrail/agenttrail/capture/capturetest"
)

// TestHTTPTraceContext: over Streamable HTTP the proxy records the agent's
// trace with a span of its own and forwards a traceparent naming that span;
// a malformed traceparent starts a new trace.
func TestHTTPTraceContext(t *testing.T) {
	for _, tc := range capturetest.TraceCases {
		t.Run(tc.Name, func(t *testing.T) {
			srv := newTestServer()
			up := &capturetest.Headers{Next: sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return srv },
				&sdk.StreamableHTTPOptions{Stateless: true, JSONResponse: true})}
			upstream := httptest.NewServer(up)
			defer upstream.Close()
			rec := &memRecorder{}
			cfg := testConfig(rec)
			cfg.Upstream = upstream.URL + "/mcp"
			p, err := NewHTTP(cfg)
			if err != nil {
				t.Fatal(err)
			}
			front := httptest.NewServer(p)
			defer func() { front.Close(); p.Close() }()

			h := capturetest.TraceHeaders(tc.Traceparent, tc.Session)
			h.Set("Authorization", "Bearer tok-ci")
			cs := connectHTTP(t, front.URL+"/mcp", h, "accept", nil)
			defer cs.Close()
			if res, err := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: "echo", Arguments: map[string]any{"msg": "traced"}}); err != nil || res.IsError {
				t.Fatalf("echo = %v, %v", res, err)
			}
			forwarded := up.Last() // the tools/call POST: stateless JSON opens no GET stream
			e := rec.call(t, "tools/call", "echo")
			capturetest.CheckTrace(t, e, tc.Traceparent, forwarded)
			if e.SessionID != tc.WantSession("") {
				t.Errorf("session_id = %q, want %q", e.SessionID, tc.Session)
			}
		})
	}
}

// TestStdioTraceContext: on stdio, which has no headers, a request's
// params._meta.traceparent is the parent of the span recorded for it; a
// malformed one starts a new trace.
func TestStdioTraceContext(t *testing.T) {
	rec := &memRecorder{}
	observeLines(t, testConfig(rec),
		`>{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","_meta":{"traceparent":"`+capturetest.Traceparent+`","tracestate":"`+capturetest.Tracestate+`"}}}`,
		`<{"jsonrpc":"2.0","id":1,"result":{"content":[]}}`,
		`>{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"b","_meta":{"traceparent":"`+capturetest.BadTraceparent+`"}}}`,
		`<{"jsonrpc":"2.0","id":2,"result":{"content":[]}}`,
		`>{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"c","_meta":{"traceparent":17}}}`,
		`<{"jsonrpc":"2.0","id":3,"result":{"content":[]}}`,
	)
	capturetest.CheckTrace(t, rec.call(t, "tools/call", "a"), capturetest.Traceparent, nil)
	capturetest.CheckTrace(t, rec.call(t, "tools/call", "b"), capturetest.BadTraceparent, nil)
	capturetest.CheckTrace(t, rec.call(t, "tools/call", "c"), "", nil)
	if a, b := rec.call(t, "tools/call", "b"), rec.call(t, "tools/call", "c"); a.TraceID == b.TraceID {
		t.Errorf("two calls without a trace share trace %s; want a trace each", a.TraceID)
	}
}
