package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/wire"
)

// hookReceiver is a webhook endpoint that keeps the events it took, by
// event id (as a receiver keyed on Idempotency-Key or id would), and
// counts what it saw twice.
type hookReceiver struct {
	mu    sync.Mutex
	seqs  []int64
	seen  map[string]bool
	dups  int
	delay time.Duration
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	time.Sleep(h.delay)
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, l := range strings.Split(strings.TrimSpace(string(body)), "\n") {
		var e agenttrail.Event
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if h.seen[e.ID] {
			h.dups++
			continue
		}
		h.seen[e.ID] = true
		h.seqs = append(h.seqs, e.Seq)
	}
}

func (h *hookReceiver) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.seqs)
}

func sinksStatus(t *testing.T, p *process) wire.SinkStatus {
	t.Helper()
	s, err := p.client().Sinks(context.Background())
	if err != nil || len(s.Sinks) != 1 {
		t.Fatalf("Sinks = %+v, %v", s, err)
	}
	return s.Sinks[0]
}

// TestSinkKilledMidDelivery: serve is SIGKILLed while its webhook sink is
// delivering; the next serve resumes from the checkpoint in the store, and
// the receiver ends with every event, in seq order, none missing.
func TestSinkKilledMidDelivery(t *testing.T) {
	rc := &hookReceiver{seen: map[string]bool{}, delay: 5 * time.Millisecond}
	hook := httptest.NewServer(rc)
	defer hook.Close()
	dir := t.TempDir()
	secret := filepath.Join(dir, "hook.secret")
	os.WriteFile(secret, []byte("s3cret"), 0o600)
	cfg := filepath.Join(dir, "agenttrail.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`sinks:
  - name: hook
    type: webhook
    url: %s
    secret_file: %s
    filter: {source: [shell]}
    batch: {max_events: 20, max_wait: 50ms}
    retry: {min: 10ms, max: 200ms}
`, hook.URL, secret)), 0o600)
	data, addr := filepath.Join(dir, "data"), freeAddr(t)
	p := startServe(t, addr, data, "--config", cfg)
	const n = 4000
	var events []agenttrail.Event
	for i := range n {
		events = append(events, agenttrail.Event{ActorType: "agent", ActorID: "killer", Source: "shell", Action: "exec", Result: "success", ID: fmt.Sprintf("ev-%05d", i)})
	}
	c := p.client()
	for i := 0; i < n; i += 500 {
		if _, err := c.Ingest(context.Background(), events[i:i+500]); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(time.Minute)
	for rc.count() < 1000 {
		if time.Now().After(deadline) {
			t.Fatalf("the sink delivered %d events in a minute\n%s", rc.count(), p.stderr)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.cmd.Wait()
	atKill := rc.count()
	if atKill >= n {
		t.Fatalf("the sink had delivered everything (%d) before the kill; slow it down", atKill)
	}

	p2 := startServe(t, addr, data, "--config", cfg)
	deadline = time.Now().Add(2 * time.Minute)
	for {
		st := sinksStatus(t, p2)
		if rc.count() == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the restart: %+v, receiver has %d of %d\n%s", st, rc.count(), n, p2.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for i := 1; i < len(rc.seqs); i++ {
		if rc.seqs[i] <= rc.seqs[i-1] {
			t.Fatalf("receiver's event %d has seq %d after %d: want seq order", i, rc.seqs[i], rc.seqs[i-1])
		}
	}
	t.Logf("killed at %d of %d delivered; resent after the restart (dropped by id): %d", atKill, n, rc.dups)

	// The CLI shows it, and moves it back.
	out := runBinary(t, "sinks", "--server", p2.url, "--token", p2.token)
	if !strings.Contains(out, "hook") || !strings.Contains(out, "webhook") || !strings.Contains(out, "CHECKPOINT") {
		t.Errorf("agenttrail sinks printed:\n%s", out)
	}
	out = runBinary(t, "sinks", "replay", "hook", "--from-seq", "3990", "--server", p2.url, "--token", p2.token)
	if !strings.Contains(out, "checkpoint moved to 3989") { // the shell events are seq 1 to 4000: ingested before any read
		t.Errorf("agenttrail sinks replay printed %q", out)
	}
	out = runBinary(t, "sinks", "dead-letters", "hook", "--server", p2.url, "--token", p2.token)
	if !strings.Contains(out, "no dead letters") {
		t.Errorf("agenttrail sinks dead-letters printed %q", out)
	}
	cmd := exec.Command(binary, "sinks", "replay", "nope", "--from-seq", "1", "--server", p2.url, "--token", p2.token)
	if b, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(b), "no sink named") {
		t.Errorf("sinks replay of an unknown sink = %v: %s", err, b)
	}
}
