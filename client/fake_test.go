package client

import (
	"cmp"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/wire"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// ingestServer is a loopback peer for Recorder unit tests: POST /v1/events
// normalizes and validates every event with the domain's own rules, stores
// it once per (org, id), and answers like the wire contract (docs/architecture.md). Tests make it answer
// an error status instead, or refuse batches over a size.
type ingestServer struct {
	srv *httptest.Server

	status    atomic.Int32 // when set, every POST answers it as problem+json
	maxEvents atomic.Int32 // when set, larger batches answer 413

	mu         sync.Mutex
	byKey      map[string]agenttrail.Event
	posts      int
	received   int // events in 200 answers, duplicates included
	duplicates int
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// newIngestServer starts an ingestServer on a free loopback port.
func newIngestServer(t *testing.T) *ingestServer {
	t.Helper()
	return startIngestServer(t, "127.0.0.1:0")
}

// startIngestServer starts an ingestServer on addr.
func startIngestServer(t *testing.T, addr string) *ingestServer {
	t.Helper()
	s := &ingestServer{byKey: map[string]agenttrail.Event{}}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on %s: %v", addr, err)
	}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serveHTTP))
	s.srv.Listener.Close()
	s.srv.Listener = ln
	s.srv.Start()
	t.Cleanup(s.srv.Close)
	return s
}

func (s *ingestServer) URL() string { return s.srv.URL }

func (s *ingestServer) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/events" {
		writeProblem(w, http.StatusNotFound, "not_found", "no such route")
		return
	}
	if st := int(s.status.Load()); st != 0 {
		w.Header().Set("Retry-After", "1")
		writeProblem(w, st, "unavailable", "the store is not answering")
		return
	}
	var events []agenttrail.Event
	if err := json.NewDecoder(r.Body).Decode(&events); err != nil {
		writeProblem(w, http.StatusBadRequest, "invalid", "body: "+err.Error())
		return
	}
	if max := int(s.maxEvents.Load()); max > 0 && len(events) > max {
		writeProblem(w, http.StatusRequestEntityTooLarge, "too_large", "body: over "+strconv.Itoa(max)+" events")
		return
	}
	now := time.Now()
	res := wire.IngestResult{Rejected: []wire.Rejection{}}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.posts++
	for i, e := range events {
		e.Normalize(now, "")
		if err := e.Validate(now); err != nil {
			res.Rejected = append(res.Rejected, wire.Rejection{Index: i, Error: agenttrail.ErrorMessage(err)})
			continue
		}
		s.received++
		key := e.Org + "\x00" + e.ID
		if _, ok := s.byKey[key]; ok {
			res.Duplicates++
			s.duplicates++
			continue
		}
		s.byKey[key] = e
		res.Accepted++
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(res)
}

func writeProblem(w http.ResponseWriter, status int, code, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{
		"type": "urn:agenttrail:problem:" + code, "title": http.StatusText(status),
		"status": status, "detail": detail, "code": code,
	})
}

// stored returns the stored events in producer_seq order.
func (s *ingestServer) stored() []agenttrail.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]agenttrail.Event, 0, len(s.byKey))
	for _, e := range s.byKey {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b agenttrail.Event) int {
		return cmp.Or(cmp.Compare(a.ProducerID, b.ProducerID), cmp.Compare(a.ProducerSeq, b.ProducerSeq))
	})
	return out
}

func (s *ingestServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byKey)
}

func (s *ingestServer) dups() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.duplicates
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkSeqs fails unless events hold exactly producer_seq from..to of one
// producer, each once.
func checkSeqs(t *testing.T, events []agenttrail.Event, producer string, from, to int64) {
	t.Helper()
	if want := int(to - from + 1); len(events) != want {
		t.Fatalf("stored %d events, want %d (producer_seq %d..%d)", len(events), want, from, to)
	}
	for i, e := range events {
		if e.ProducerID != producer {
			t.Fatalf("events[%d].ProducerID = %q, want %q", i, e.ProducerID, producer)
		}
		if want := from + int64(i); e.ProducerSeq != want {
			t.Fatalf("events[%d].ProducerSeq = %d, want %d (a gap or a repeat)", i, e.ProducerSeq, want)
		}
	}
}

// testEvent is a valid event but for what a Recorder stamps.
// agentEvents matches the events the tests record, all of them an agent's,
// and not the test server's audit of the tests' own reads (a user's) and
// of its token (the server's).
func agentEvents() agenttrail.Filter {
	return agenttrail.Filter{ActorType: []string{string(agenttrail.ActorAgent)}}
}

func testEvent(i int) agenttrail.Event {
	return agenttrail.Event{
		ActorType: agenttrail.ActorAgent,
		ActorID:   "agent-" + strconv.Itoa(i%7),
		Source:    agenttrail.SourceShell,
		Action:    "shell_exec",
		Result:    agenttrail.ResultSuccess,
		Metadata:  json.RawMessage(`{"shell":{"command":"ls","exit_code":0}}`),
	}
}
