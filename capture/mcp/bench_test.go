package mcp

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/capture/capturetest"
)

// countingRecorder counts events; it stands in for client.Recorder, whose
// Record only queues, so the benchmark measures the proxy.
type countingRecorder struct{ n atomic.Int64 }

func (c *countingRecorder) Record(context.Context, agenttrail.Event) { c.n.Add(1) }

// BenchmarkHTTPToolsCall measures the latency the proxy adds to one
// tools/call over Streamable HTTP: the same client calls the same server
// directly and through the proxy, alternately, in one run, and the
// difference of the percentiles is reported.
func BenchmarkHTTPToolsCall(b *testing.B) {
	for _, mode := range []struct {
		name string
		opts *sdk.StreamableHTTPOptions
	}{
		{"sse", nil},
		{"json", &sdk.StreamableHTTPOptions{JSONResponse: true}},
	} {
		b.Run(mode.name, func(b *testing.B) {
			srv := newTestServer()
			upstream := httptest.NewServer(sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return srv }, mode.opts))
			defer upstream.Close()
			rec := &countingRecorder{}
			cfg := testConfig(rec)
			cfg.Upstream = upstream.URL
			p, err := NewHTTP(cfg)
			if err != nil {
				b.Fatal(err)
			}
			front := httptest.NewServer(p)
			defer front.Close()

			ctx := context.Background()
			connect := func(url string) *sdk.ClientSession {
				tr := &sdk.StreamableClientTransport{Endpoint: url, DisableStandaloneSSE: true, MaxRetries: -1}
				cs, err := newTestClient("").Connect(ctx, tr, nil)
				if err != nil {
					b.Fatal(err)
				}
				return cs
			}
			direct, proxied := connect(upstream.URL), connect(front.URL)
			defer direct.Close()
			defer proxied.Close()
			params := &sdk.CallToolParams{Name: "echo", Arguments: map[string]any{"msg": "benchmark"}}
			call := func(cs *sdk.ClientSession) error {
				_, err := cs.CallTool(ctx, params)
				return err
			}
			before, calls := rec.n.Load(), int64(0)
			capturetest.Latency(b, func() error { return call(direct) }, func() error {
				calls++
				return call(proxied)
			})
			if got := rec.n.Load() - before; got != calls {
				b.Fatalf("recorded %d events for %d proxied calls", got, calls)
			}
		})
	}
}
