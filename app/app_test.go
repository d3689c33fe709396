package app

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/ingest"
)

// TestRunServesUntilCancelled runs a server on a fresh data directory: it
// writes its first-start files, answers with the admin token it wrote and
// not without one, and when its context ends it stops, commits what it
// accepted, and closes its store.
func TestRunServesUntilCancelled(t *testing.T) {
	dir := t.TempDir()
	m, err := Open(t.Context(), Config{Addr: "127.0.0.1:0", DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	ran := make(chan error, 1)
	go func() { ran <- m.Run(ctx) }()
	for _, f := range []string{TokensFile, AdminTokenFile, CursorKeyFile, StoreFile, SpoolDir} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("first start left no %s: %v", f, err)
		}
	}
	token, err := os.ReadFile(filepath.Join(dir, AdminTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	post := func(auth string) int {
		req, _ := http.NewRequest(http.MethodPost, m.URL()+"/v1/events",
			strings.NewReader(`{"id":"e1","actor_type":"agent","actor_id":"a","source":"shell","action":"ls","result":"success"}`))
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := post(""); got != http.StatusUnauthorized {
		t.Errorf("POST without a token = %d, want 401", got)
	}
	if got := post(strings.TrimSpace(string(token))); got != http.StatusOK {
		t.Errorf("POST with the admin token = %d, want 200", got)
	}
	// Every part registers on the one registry /metrics serves.
	resp, err := http.Get(m.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, name := range []string{"agenttrail_ingest_accepted_total", "agenttrail_ingest_spool_bytes", `db_name="agenttrail_sqlite_writer"`,
		"agenttrail_http_requests_total", "agenttrail_audit_recorded_total", "go_goroutines"} {
		if !strings.Contains(string(metrics), name) {
			t.Errorf("/metrics has no %s", name)
		}
	}
	store := m.Store()
	cancel()
	if err := <-ran; err != nil {
		t.Fatalf("Run after cancel = %v, want nil", err)
	}
	if err := store.Ping(context.Background()); err == nil {
		t.Errorf("the store answers after Run returned; want it closed")
	}
	if _, err := http.Get(m.URL() + "/livez"); err == nil {
		t.Errorf("GET /livez answered after Run returned")
	}
	// What was accepted is in the store when the next process opens it.
	m2, err := Open(t.Context(), Config{Addr: "127.0.0.1:0", DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	if _, err := m2.Store().Get(t.Context(), "e1", agenttrail.Filter{}); err != nil {
		t.Errorf("Get(e1) after a restart = %v", err)
	}
}

// TestRunStopsWhenAnActorFails makes one actor fail at once (the writer,
// which was run and stopped before): Run must stop every other one, the
// HTTP server included, and return that error, so the process exits
// instead of serving without a writer.
func TestRunStopsWhenAnActorFails(t *testing.T) {
	m, err := Open(t.Context(), Config{Addr: "127.0.0.1:0", DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ended, end := context.WithCancel(t.Context())
	end()
	if err := m.pipeline.Run(ended); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- m.Run(t.Context()) }()
	select {
	case err := <-done:
		if !errors.Is(err, ingest.ErrRunning) {
			t.Errorf("Run = %v, want the writer's %v", err, ingest.ErrRunning)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not stop after an actor failed")
	}
	if _, err := http.Get(m.URL() + "/livez"); err == nil {
		t.Errorf("GET /livez answered after Run returned")
	}
}
