package sink

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
)

// esStandIn is the _bulk API as Elasticsearch documents it: NDJSON action
// and source lines; "create" fails with 409 when the _id exists; the
// answer has "errors" and one item per action with its status and error.
type esStandIn struct {
	t *testing.T

	mu       sync.Mutex
	docs     map[string]bool
	order    []string // event ids in the order created
	conflict int
	poison   string          // an event id refused with 400 mapper_parsing_exception
	reject   map[string]bool // event ids refused once with 429 es_rejected_execution_exception
	down     bool
}

func newESStandIn(t *testing.T) (*esStandIn, *httptest.Server) {
	s := &esStandIn{t: t, docs: map[string]bool{}, reject: map[string]bool{}}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv
}

func (s *esStandIn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.URL.Path != "/_bulk" || r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-ndjson" {
		http.Error(w, `{"error":"bad request"}`, 400)
		return
	}
	if s.down {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	sc := bufio.NewScanner(r.Body)
	sc.Buffer(nil, 4<<20)
	var items []map[string]any
	errors := false
	for sc.Scan() {
		var action map[string]struct {
			Index string `json:"_index"`
			ID    string `json:"_id"`
		}
		if err := json.Unmarshal(sc.Bytes(), &action); err != nil || !sc.Scan() {
			http.Error(w, `{"error":"malformed bulk"}`, 400)
			return
		}
		var doc agenttrail.Event
		if err := json.Unmarshal(sc.Bytes(), &doc); err != nil {
			http.Error(w, `{"error":"malformed source"}`, 400)
			return
		}
		a, ok := action["create"]
		if !ok || a.ID != doc.Org+"/"+doc.ID || a.Index != "audit" {
			s.t.Errorf("action %v for event %s/%s", action, doc.Org, doc.ID)
		}
		item := map[string]any{"_index": a.Index, "_id": a.ID}
		switch {
		case doc.ID == s.poison:
			item["status"], item["error"] = 400, map[string]any{"type": "mapper_parsing_exception", "reason": "failed to parse field [metadata]"}
		case s.reject[doc.ID]:
			delete(s.reject, doc.ID)
			item["status"], item["error"] = 429, map[string]any{"type": "es_rejected_execution_exception", "reason": "rejected execution"}
		case s.docs[a.ID]:
			s.conflict++
			item["status"], item["error"] = 409, map[string]any{"type": "version_conflict_engine_exception", "reason": "document already exists"}
		default:
			s.docs[a.ID] = true
			s.order = append(s.order, doc.ID)
			item["status"] = 201
		}
		if item["status"] != 201 {
			errors = true
		}
		items = append(items, map[string]any{"create": item})
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"took": 1, "errors": errors, "items": items})
}

// TestElasticsearch: per-item answers: a rejected execution retries only
// those items, a mapping failure is a dead letter, a replay creates
// nothing twice (409), an outage loses nothing.
func TestElasticsearch(t *testing.T) {
	store, events := openStore(t, 1000)
	es, srv := newESStandIn(t)
	es.poison = events[500].ID
	for i := 100; i < 1000; i += 97 {
		es.reject[events[i].ID] = true
	}
	es.down = true
	set := start(t, store, testConfig(t, Config{Type: TypeElasticsearch, URL: srv.URL, Index: "audit", Batch: BatchLimits{MaxEvents: 250}}))
	waitFor(t, "a failed attempt", func() bool {
		st, _ := set.Status(t.Context())
		return st[0].Retried > 0
	})
	es.mu.Lock()
	es.down = false
	es.mu.Unlock()
	waitCaughtUp(t, set, "test")
	var want []agenttrail.Event
	for _, e := range events {
		if e.ID != es.poison {
			want = append(want, e)
		}
	}
	es.mu.Lock()
	order := append([]string(nil), es.order...)
	es.mu.Unlock()
	// Retried items come after the rest of their batch: seq order holds
	// within what was created at first attempt, and nothing is missing.
	got := map[string]bool{}
	for _, id := range order {
		got[id] = true
	}
	for _, e := range want {
		if !got[e.ID] {
			t.Fatalf("event seq %d was never created", e.Seq)
		}
	}
	if len(order) != len(want) {
		t.Fatalf("created %d documents, want %d", len(order), len(want))
	}
	letters, _ := set.DeadLetters(t.Context(), "test", 0, 10)
	if len(letters) != 1 || letters[0].EventID != es.poison || !strings.Contains(letters[0].Reason, "mapper_parsing_exception") {
		t.Fatalf("dead letters = %+v", letters)
	}
	// A replay from the start: every create is a 409, no document twice.
	if _, err := set.Replay(t.Context(), "test", 1, time.Time{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the replay", func() bool {
		es.mu.Lock()
		defer es.mu.Unlock()
		return es.conflict >= len(want)
	})
	es.mu.Lock()
	defer es.mu.Unlock()
	if len(es.order) != len(want) {
		t.Errorf("after a replay %d documents, want %d: duplicates", len(es.order), len(want))
	}
}
