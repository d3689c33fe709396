package mcp

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agenttrail/agenttrail"
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
			call := func(cs *sdk.ClientSession) time.Duration {
				start := time.Now()
				if _, err := cs.CallTool(ctx, params); err != nil {
					b.Fatal(err)
				}
				return time.Since(start)
			}
			for range 50 { // warm up connections and caches
				call(direct)
				call(proxied)
			}
			before := rec.n.Load()
			directT := make([]time.Duration, 0, b.N)
			proxiedT := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				directT = append(directT, call(direct))
				proxiedT = append(proxiedT, call(proxied))
			}
			b.StopTimer()
			if got := rec.n.Load() - before; got != int64(b.N) {
				b.Fatalf("recorded %d events for %d proxied calls", got, b.N)
			}
			d50, d99 := percentiles(directT)
			p50, p99 := percentiles(proxiedT)
			us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
			b.ReportMetric(us(d50), "direct-p50-µs")
			b.ReportMetric(us(d99), "direct-p99-µs")
			b.ReportMetric(us(p50), "proxied-p50-µs")
			b.ReportMetric(us(p99), "proxied-p99-µs")
			b.ReportMetric(us(p50-d50), "added-p50-µs")
			b.ReportMetric(us(p99-d99), "added-p99-µs")
		})
	}
}

func percentiles(ds []time.Duration) (p50, p99 time.Duration) {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)*50/100], s[min(len(s)-1, len(s)*99/100)]
}
