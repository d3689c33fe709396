package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/sink"
	"github.com/agenttrail/agenttrail/storetest"
)

// TestRetentionWaitsForRequiredSink: with a required sink that is down,
// retention deletes nothing the sink has not delivered, and says so in its
// audit event and on /metrics; once the sink delivered, the next run
// deletes what is past the horizon.
func TestRetentionWaitsForRequiredSink(t *testing.T) {
	up, sc := requiredHook(t)
	m, err := Open(t.Context(), Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), Retain: 24 * time.Hour, Sinks: []sink.Config{sc}})
	if err != nil {
		t.Fatal(err)
	}
	// A year-old trail, all past the 24-hour horizon.
	old := storetest.AppendAll(t, m.Store(), storetest.Events(7, 300, time.Now().Add(-365*24*time.Hour), time.Hour), 300)
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- m.Run(ctx) }()
	defer func() { cancel(); <-ran }()

	// The run at start keeps every event and says why.
	run := waitRetentionRun(t, m, 1)
	if !strings.Contains(run.Description, "deleted 0 events") || !strings.Contains(run.Description, "required sink") || !strings.Contains(string(run.Metadata), `"held_by_required_sinks":true`) {
		t.Fatalf("retention run with the required sink down = %q %s", run.Description, run.Metadata)
	}
	if n := countEvents(t, m, agenttrail.Filter{NotSource: []string{agenttrail.SourceAudit}}); n != len(old) {
		t.Fatalf("after retention with the required sink down: %d events, want all %d", n, len(old))
	}
	if !strings.Contains(scrape(t, m), "agenttrail_retention_held_by_sinks 1") {
		t.Error("/metrics does not say retention is held by sinks")
	}

	// The sink comes back and delivers; the next run deletes the old trail.
	up.Store(true)
	waitDelivered(t, m, old[len(old)-1].Seq)
	if err := m.ret.once(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := countEvents(t, m, agenttrail.Filter{NotSource: []string{agenttrail.SourceAudit}}); n != 0 {
		t.Errorf("after the sink delivered, retention left %d old events", n)
	}
	if !strings.Contains(scrape(t, m), "agenttrail_retention_held_by_sinks 0") {
		t.Error("/metrics still says retention is held")
	}
}

// requiredHook returns a required webhook sink whose receiver refuses
// every batch until up is set.
func requiredHook(t *testing.T) (up *atomic.Bool, sc sink.Config) {
	up = new(atomic.Bool)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if !up.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(hook.Close)
	sc = sink.Config{Name: "soc", Type: sink.TypeWebhook, URL: hook.URL, Required: true,
		Retry: sink.Retry{Min: sink.Duration(10 * time.Millisecond), Max: sink.Duration(100 * time.Millisecond)},
		Batch: sink.BatchLimits{MaxWait: sink.Duration(10 * time.Millisecond)}}
	if err := sc.Check(); err != nil {
		t.Fatal(err)
	}
	return up, sc
}

// waitDelivered waits until m's first sink has delivered up to seq.
func waitDelivered(t *testing.T, m *Main, seq int64) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		st, _ := m.sinks.Status(t.Context())
		if st[0].Checkpoint >= seq {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("sink did not deliver: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitRetentionRun(t *testing.T, m *Main, n int) agenttrail.Event {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		p, err := m.Store().Query(t.Context(), agenttrail.Query{Filter: agenttrail.Filter{Action: []string{"retention.run"}}, Sort: agenttrail.SortSeq, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Events) >= n {
			return p.Events[n-1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no retention run recorded")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func countEvents(t *testing.T, m *Main, f agenttrail.Filter) int {
	t.Helper()
	n := 0
	q := agenttrail.Query{Filter: f, Sort: agenttrail.SortSeq, Limit: 1000}
	for {
		p, err := m.Store().Query(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		n += len(p.Events)
		if len(p.Events) < q.Limit {
			return n
		}
		q.After = p.Next
	}
}

func scrape(t *testing.T, m *Main) string {
	t.Helper()
	resp, err := http.Get(m.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestRetentionRules: the first matching rule decides, else the default;
// a required sink that is down holds back what it has not delivered; the
// audit event says what each rule deleted.
func TestRetentionRules(t *testing.T) {
	up, sc := requiredHook(t)
	day := 24 * time.Hour
	rules := []RetentionRule{
		{Org: []string{"acme"}, Source: []string{agenttrail.SourceLLM}, Keep: 400 * day},
		{Source: []string{agenttrail.SourceLLM}, Keep: 90 * day},
		{Org: []string{"globex"}, Keep: 7 * 365 * day},
	}
	m, err := Open(t.Context(), Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), Retain: 30 * day, RetentionRules: rules, Sinks: []sink.Config{sc}})
	if err != nil {
		t.Fatal(err)
	}
	// Events of the last 200 days, not yet delivered.
	now := time.Now()
	stored := storetest.AppendAll(t, m.Store(), storetest.Events(9, 600, now.Add(-200*day), 199*day), 300)
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- m.Run(ctx) }()
	defer func() { cancel(); <-ran }()

	nonAudit := agenttrail.Filter{NotSource: []string{agenttrail.SourceAudit}}
	run := waitRetentionRun(t, m, 1)
	if !strings.Contains(run.Description, "deleted 0 events") || !strings.Contains(string(run.Metadata), `"held_by_required_sinks":true`) {
		t.Fatalf("retention run with the required sink down = %q %s", run.Description, run.Metadata)
	}
	if n := countEvents(t, m, nonAudit); n != len(stored) {
		t.Fatalf("with the required sink down: %d events, want all %d", n, len(stored))
	}
	if !strings.Contains(scrape(t, m), "agenttrail_retention_held_by_sinks 1") {
		t.Error("/metrics does not say retention is held by sinks")
	}

	up.Store(true)
	waitDelivered(t, m, stored[len(stored)-1].Seq)
	at := time.Now()
	if err := m.ret.once(t.Context()); err != nil {
		t.Fatal(err)
	}
	// The model, at the run's time: rules first, then the default.
	keepOf := func(e *agenttrail.Event) time.Duration {
		for _, r := range rules {
			if f := r.filter(); f.Match(e) {
				return r.Keep
			}
		}
		return 30 * day
	}
	want := map[int]int64{}
	var kept int
	for i := range stored {
		e := &stored[i]
		k := keepOf(e)
		if !e.Time.Before(at.Add(-k)) {
			kept++
			continue
		}
		rule := len(rules)
		for j, r := range rules {
			if f := r.filter(); f.Match(e) {
				rule = j
				break
			}
		}
		want[rule]++
	}
	if want[0] != 0 || want[1] == 0 || want[2] != 0 || want[len(rules)] == 0 {
		t.Fatalf("the generated trail does not exercise the rules: %v", want)
	}
	if n := countEvents(t, m, nonAudit); n != kept {
		t.Errorf("after the run with rules: %d events, want %d", n, kept)
	}
	run = waitRetentionRun(t, m, 2)
	var meta struct {
		Retention struct {
			Deleted int64 `json:"deleted"`
			Rules   []struct {
				Rule    any   `json:"rule"`
				Deleted int64 `json:"deleted"`
			} `json:"rules"`
		} `json:"retention"`
	}
	if err := json.Unmarshal(run.Metadata, &meta); err != nil || len(meta.Retention.Rules) != len(rules)+1 {
		t.Fatalf("retention run metadata = %s, %v", run.Metadata, err)
	}
	for i, r := range meta.Retention.Rules {
		if r.Deleted != want[i] {
			t.Errorf("rule %v deleted %d, want %d (%s)", r.Rule, r.Deleted, want[i], run.Description)
		}
	}
	if !strings.Contains(run.Description, fmt.Sprintf("rule 2 (source=llm-proxy keep=2160h0m0s): %d older than", want[1])) {
		t.Errorf("retention run description = %q, want what rule 2 deleted", run.Description)
	}
	if !strings.Contains(scrape(t, m), "agenttrail_retention_held_by_sinks 0") {
		t.Error("/metrics still says retention is held")
	}
}
