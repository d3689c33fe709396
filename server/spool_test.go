package server

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/ingest"
	"github.com/agenttrail/agenttrail/sqlite"
	"github.com/agenttrail/agenttrail/wire"
)

// flakyStore is a real store whose Append and Ping fail while down is set.
type flakyStore struct {
	agenttrail.Store
	down atomic.Bool
}

func (f *flakyStore) Append(ctx context.Context, batch []agenttrail.Event) (agenttrail.AppendResult, error) {
	if f.down.Load() {
		return agenttrail.AppendResult{}, agenttrail.Errorf(agenttrail.EUNAVAILABLE, "database unreachable")
	}
	return f.Store.Append(ctx, batch)
}

func (f *flakyStore) Ping(ctx context.Context) error {
	if f.down.Load() {
		return agenttrail.Errorf(agenttrail.EUNAVAILABLE, "database unreachable")
	}
	return f.Store.Ping(ctx)
}

// TestIngestIntoSpool takes the store down behind a spool: POST /v1/events
// still answers 200, saying the events were spooled; /readyz says degraded
// and, once the spool is full, 503; when the store is back the spool is
// replayed and /readyz says ok again.
func TestIngestIntoSpool(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "trail.db"), sqlite.Config{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	store := &flakyStore{Store: db}
	sp, err := ingest.OpenSpool(store, ingest.SpoolConfig{Dir: t.TempDir(), MaxBytes: 32 << 10, MaxBackoff: 20 * time.Millisecond, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	p := ingest.New(sp, ingest.Config{Logger: logger})
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 2)
	running := 1
	go func() { ran <- p.Run(ctx) }()
	srv := New(Config{Addr: "127.0.0.1:0", Store: store, Ingest: p, Spool: sp, Logger: logger})
	stop := serveTest(t, srv)
	e := &env{srv: srv, url: srv.URL(), client: &http.Client{Timeout: time.Minute}, stop: stop}
	defer func() {
		stop(context.Background())
		cancel()
		for ; running > 0; running-- {
			<-ran
		}
	}()

	now := time.Now().UTC()
	batch := func(n int) []agenttrail.Event {
		out := make([]agenttrail.Event, n)
		for i := range out {
			out[i] = agenttrail.Event{ID: agenttrail.NewID(now), Time: now, ActorType: agenttrail.ActorAgent, ActorID: "a",
				Source: "shell", Action: "shell_exec", Result: agenttrail.ResultSuccess}
		}
		return out
	}
	post := func(evs []agenttrail.Event) (response, wire.IngestResult) {
		t.Helper()
		r := e.post(t, "application/x-ndjson", ndjson(t, evs))
		var got wire.IngestResult
		if r.status == http.StatusOK {
			if err := json.Unmarshal(r.body, &got); err != nil {
				t.Fatal(err)
			}
		}
		return r, got
	}
	readyz := func() (int, wire.Status) {
		r := e.get(t, "/readyz")
		var st wire.Status
		_ = json.Unmarshal(r.body, &st)
		return r.status, st
	}

	if _, got := post(batch(5)); got.Accepted != 5 || got.Spooled != 0 {
		t.Fatalf("POST with the store up = %+v, want 5 accepted, none spooled", got)
	}
	store.down.Store(true)
	if code, st := readyz(); code != http.StatusOK || st.Status != "degraded" || st.Reason == "" {
		t.Errorf("/readyz with the store down, spool empty = %d %+v, want 200 degraded with a reason", code, st)
	}
	accepted := 5
	for i := 0; ; i++ {
		r, got := post(batch(10))
		if r.status == http.StatusServiceUnavailable {
			if r.header.Get("Retry-After") == "" {
				t.Errorf("503 from a full spool without Retry-After")
			}
			break
		}
		if r.status != http.StatusOK || got.Accepted != 10 || got.Spooled != 10 || got.Duplicates != 0 {
			t.Fatalf("POST with the store down = %d %+v, want 10 accepted, 10 spooled", r.status, got)
		}
		accepted += 10
		if i == 0 {
			if code, st := readyz(); code != http.StatusOK || st.Status != "degraded" {
				t.Errorf("/readyz while spooling = %d %+v, want 200 degraded", code, st)
			}
		}
		if i > 1000 {
			t.Fatal("the spool never filled")
		}
	}
	if code, _ := readyz(); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz with the spool full = %d, want 503", code)
	}

	store.down.Store(false)
	running++
	go func() { ran <- sp.Run(ctx) }()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if code, st := readyz(); code == http.StatusOK && st.Status == "ok" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz not ok 20 s after the store came back")
		}
		time.Sleep(10 * time.Millisecond)
	}
	page, err := db.Query(t.Context(), agenttrail.Query{Sort: agenttrail.SortSeq, Limit: agenttrail.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != accepted {
		t.Errorf("stored %d events after the replay, want the %d accepted", len(page.Events), accepted)
	}
}
