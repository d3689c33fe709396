package llm_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/capture"
	"github.com/agenttrail/agenttrail/capture/llm"
)

// memRecorder keeps recorded events in memory for unit tests, and checks
// each one against the event contract as the server would.
type memRecorder struct {
	t      *testing.T
	mu     sync.Mutex
	events []agenttrail.Event
	notify chan struct{}
}

func newMemRecorder(t *testing.T) *memRecorder {
	return &memRecorder{t: t, notify: make(chan struct{}, 1)}
}

func (m *memRecorder) Record(_ context.Context, e agenttrail.Event) {
	v := e
	now := time.Now()
	v.Normalize(now, "")
	if err := v.Validate(now); err != nil {
		m.t.Errorf("recorded an invalid event: %v\n%+v", err, e)
	}
	m.mu.Lock()
	m.events = append(m.events, e)
	m.mu.Unlock()
	select {
	case m.notify <- struct{}{}:
	default:
	}
}

// wait returns the recorded events once there are n. The proxy records
// after the response is complete, so a client may return a moment before.
func (m *memRecorder) wait(t *testing.T, n int) []agenttrail.Event {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		m.mu.Lock()
		if len(m.events) >= n {
			evs := append([]agenttrail.Event(nil), m.events...)
			m.mu.Unlock()
			return evs
		}
		m.mu.Unlock()
		select {
		case <-m.notify:
		case <-deadline:
			t.Fatalf("recorded %d events, want %d", len(m.events), n)
		}
	}
}

// proxyEnv is a proxy in front of a fake upstream, served on loopback.
type proxyEnv struct {
	proxy *llm.Proxy
	up    *upstream
	rec   *memRecorder
	reg   *prometheus.Registry
	srv   *httptest.Server
}

// Credentials of the test agents.
const (
	ciKey       = "sk-proxy-ci-0123456789abcdef"
	ciActor     = "agent-ci"
	realKey     = "sk-live-REALUPSTREAMKEY-9f8e7d6c5b4a"
	claudeKey   = "sk-ant-proxy-reviewer-0123456789"
	claudeActor = "agent-reviewer"
)

// startProxy starts a proxy configured by cfg (Upstream, Recorder,
// Identities and Registerer are filled in when empty).
func startProxy(t *testing.T, cfg llm.Config) *proxyEnv {
	t.Helper()
	env := &proxyEnv{up: newUpstream(t), rec: newMemRecorder(t), reg: prometheus.NewRegistry()}
	if cfg.Upstream == nil {
		u, err := url.Parse(env.up.URL)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Upstream = u
	}
	if cfg.Recorder == nil {
		cfg.Recorder = env.rec
	}
	if cfg.Identities == nil {
		cfg.Identities = testIdentities()
	}
	if cfg.Registerer == nil {
		cfg.Registerer = env.reg
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	}
	p, err := llm.New(cfg)
	if err != nil {
		t.Fatalf("llm.New: %v", err)
	}
	env.srv = httptest.NewServer(p)
	t.Cleanup(env.srv.Close)
	return env
}

func testIdentities() *capture.Identities {
	ids := &capture.Identities{Default: capture.Actor{ID: "unattributed", Org: "acme"}}
	ids.Add(ciKey, capture.Actor{ID: ciActor, Name: "CI agent", Project: "payments"})
	ids.Add(claudeKey, capture.Actor{ID: claudeActor})
	return ids
}

// price returns the table price of model, failing the test when it has none.
func price(t *testing.T, model string) llm.Price {
	t.Helper()
	prices, err := llm.DefaultPrices()
	if err != nil {
		t.Fatal(err)
	}
	_, p, ok := prices.Lookup(model)
	if !ok {
		t.Fatalf("no price for %q", model)
	}
	return p
}

// wantOpenAI is the usage the proxy must record for an OpenAI call that
// reported u: cached (and cache-write) tokens split out of the prompt, the
// reasoning tokens kept inside output, cost from the price table.
func wantOpenAI(t *testing.T, model string, u usage, stream bool) agenttrail.LLM {
	t.Helper()
	p := price(t, model)
	in := u.prompt - u.cached - u.cacheWrite
	cost := (float64(in)*p.Input + float64(u.completion)*p.Output + float64(u.cached)*p.CacheRead + float64(u.cacheWrite)*p.CacheWrite) / 1e6
	return agenttrail.LLM{
		Provider: "openai", Model: model, InputTokens: in, OutputTokens: u.completion,
		CacheReadTokens: u.cached, CacheWriteTokens: u.cacheWrite, ReasoningTokens: u.reasoning,
		CostUSD: &cost, Stream: stream,
	}
}

// wantAnthropic is the usage the proxy must record for an Anthropic call
// that reported u, whose counters are already disjoint.
func wantAnthropic(t *testing.T, model string, u usage, stream bool) agenttrail.LLM {
	t.Helper()
	p := price(t, model)
	cost := (float64(u.prompt)*p.Input + float64(u.completion)*p.Output + float64(u.cached)*p.CacheRead + float64(u.cacheWrite)*p.CacheWrite) / 1e6
	return agenttrail.LLM{
		Provider: "anthropic", Model: model, InputTokens: u.prompt, OutputTokens: u.completion,
		CacheReadTokens: u.cached, CacheWriteTokens: u.cacheWrite, CostUSD: &cost, Stream: stream,
	}
}

// checkLLM compares the recorded metadata.llm with want, cost exactly.
func checkLLM(t *testing.T, e agenttrail.Event, want agenttrail.LLM) {
	t.Helper()
	got, ok := e.LLM()
	if !ok {
		t.Fatalf("event has no metadata.llm: %s", e.Metadata)
	}
	gc, wc := got.CostUSD, want.CostUSD
	got.CostUSD, want.CostUSD = nil, nil
	if got != want {
		t.Errorf("metadata.llm =\n %+v, want\n %+v", got, want)
	}
	switch {
	case (gc == nil) != (wc == nil):
		t.Errorf("cost_usd = %v, want %v", fmtCost(gc), fmtCost(wc))
	case gc != nil && *gc != *wc:
		t.Errorf("cost_usd = %.12f, want %.12f", *gc, *wc)
	}
}

func fmtCost(c *float64) any {
	if c == nil {
		return "absent"
	}
	return *c
}

// checkEvent checks the event fields every metered call has.
func checkEvent(t *testing.T, e agenttrail.Event, action, model string, status int, result agenttrail.Result, actor string) {
	t.Helper()
	if e.Source != agenttrail.SourceLLM || e.Action != action || e.ResourceType != "model" || e.ResourceID != model {
		t.Errorf("event source/action/resource = %q %q %q/%q, want llm-proxy %q model/%q", e.Source, e.Action, e.ResourceType, e.ResourceID, action, model)
	}
	if e.StatusCode != status || e.Result != result {
		t.Errorf("status, result = %d %q, want %d %q", e.StatusCode, e.Result, status, result)
	}
	if e.ActorID != actor || e.ActorType != agenttrail.ActorAgent {
		t.Errorf("actor = %q (%s), want %q (agent)", e.ActorID, e.ActorType, actor)
	}
	if e.DurationMS <= 0 || e.Time.IsZero() {
		t.Errorf("duration_ms, time = %v, %v; want both set", e.DurationMS, e.Time)
	}
	if !strings.HasPrefix(e.Description, model+": ") {
		t.Errorf("description = %q, want a sentence about %s", e.Description, model)
	}
}

// unknownCount reads agenttrail_llm_unknown_model_total{model}.
func unknownCount(t *testing.T, reg *prometheus.Registry, model string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "agenttrail_llm_unknown_model_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "model" && l.GetValue() == model {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
