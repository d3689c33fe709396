package llm_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail/capture/capturetest"
	"github.com/agenttrail/agenttrail/capture/llm"
	"github.com/agenttrail/agenttrail/client"
	"github.com/agenttrail/agenttrail/servertest"
	"github.com/agenttrail/agenttrail/wire"
)

// BenchmarkBudgetCheck measures the latency a budget check adds to a call:
// the same non-streamed chat completion through a proxy without budgets
// ("direct" in the report) and through one that reserves and settles with
// a real server on loopback ("proxied"), alternating in one run. The
// server holds a daily budget of the caller's org that the run never
// exhausts; p99-added-µs is the cost. Every call is checked: after the
// first, the proxy holds an allowance and admits calls under it, asking
// for the next in the background; asked-% is the share of calls that
// waited for a reservation of their own. Each call is settled with the
// trail, as in use.
//
// The server runs as a process of its own, as it does in use
// (server=process), and in the benchmark's process (server=in-process),
// where its commits and garbage collection compete with the proxies and
// the client for the same two cores and the same collector.
func BenchmarkBudgetCheck(b *testing.B) {
	b.Run("server=process", func(b *testing.B) { benchBudgetCheck(b, servertest.Exec(b)) })
	b.Run("server=in-process", func(b *testing.B) { benchBudgetCheck(b, servertest.Start(b)) })
}

func benchBudgetCheck(b *testing.B, srv *servertest.Server) {
	api := client.New(srv.URL, client.WithToken(servertest.Token))
	b.Cleanup(api.CloseIdleConnections)
	if _, err := api.PutBudget(context.Background(), "daily", wire.BudgetRequest{Org: "acme", LimitUSD: 1e6, Period: "day"}); err != nil {
		b.Fatal(err)
	}
	up := newUpstream(b)
	u, _ := url.Parse(up.URL)
	start := func(budget *llm.BudgetConfig) string {
		// Both record to the server, so its store holds the calls' events
		// as it would in use, and reservations end as they land.
		p, err := llm.New(llm.Config{Upstream: u, Recorder: capturetest.Recorder(b, srv.URL), Identities: testIdentities(), Budget: budget})
		if err != nil {
			b.Fatal(err)
		}
		s := httptest.NewServer(p)
		b.Cleanup(func() { s.Close(); p.WaitSettled() })
		return s.URL
	}
	asks := &countingChecker{BudgetChecker: api}
	plain, budgeted := start(nil), start(&llm.BudgetConfig{Trail: asks})
	e := &benchEnv{client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}}
	const body = `{"model":"gpt-4o","max_tokens":200,"messages":[{"role":"user","content":"Describe the image."}]}`
	capturetest.MeasuredLatency(b,
		func() (time.Duration, error) { return e.post(plain, body, false) },
		func() (time.Duration, error) { return e.post(budgeted, body, false) })
	// The share of calls that waited for a reservation of their own, the
	// rest having been admitted under an allowance.
	b.ReportMetric(100*float64(asks.calls.Load())/float64(b.N+capturetest.WarmRounds), "asked-%")
}
