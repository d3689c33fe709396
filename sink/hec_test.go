package sink

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/storetest"
)

// hecStandIn is Splunk's HTTP Event Collector as its documentation
// describes it: /services/collector/event takes stacked JSON events with
// "Authorization: Splunk <token>", answers {"text","code"} (with
// "invalid-event-number" for a bad event, after indexing the ones before
// it), and with acknowledgement on needs X-Splunk-Request-Channel, gives
// an ackId and reports it on /services/collector/ack once indexed.
type hecStandIn struct {
	t     *testing.T
	token string
	ack   bool

	mu      sync.Mutex
	busy    bool
	poison  string // an event id that fails as "Invalid data format"
	ids     []string
	seen    map[string]int
	nextAck int64
	pending map[int64][]string // ackId -> events indexed once it is acknowledged
	polls   map[int64]int
}

func newHECStandIn(t *testing.T, token string, ack bool) (*hecStandIn, *httptest.Server) {
	h := &hecStandIn{t: t, token: token, ack: ack, seen: map[string]int{}, pending: map[int64][]string{}, polls: map[int64]int{}}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return h, srv
}

func hecReply(w http.ResponseWriter, status int, v map[string]any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (h *hecStandIn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if r.Header.Get("Authorization") != "Splunk "+h.token {
		hecReply(w, 401, map[string]any{"text": "Invalid authorization", "code": 3})
		return
	}
	channel := r.Header.Get("X-Splunk-Request-Channel")
	if h.ack && channel == "" {
		hecReply(w, 400, map[string]any{"text": "Data channel is missing", "code": 10})
		return
	}
	switch r.URL.Path {
	case "/services/collector/ack":
		if r.URL.Query().Get("channel") != channel {
			hecReply(w, 400, map[string]any{"text": "Invalid data channel", "code": 11})
			return
		}
		var req struct{ Acks []int64 }
		json.NewDecoder(r.Body).Decode(&req)
		out := map[string]bool{}
		for _, id := range req.Acks {
			h.polls[id]++
			// Indexed by the second poll.
			if ids, ok := h.pending[id]; ok && h.polls[id] >= 2 {
				h.index(ids)
				delete(h.pending, id)
			}
			_, waiting := h.pending[id]
			out[strconv.FormatInt(id, 10)] = !waiting && h.polls[id] >= 2
		}
		hecReply(w, 200, map[string]any{"acks": out})
		return
	case "/services/collector/event":
	default:
		hecReply(w, 404, map[string]any{"text": "not found", "code": 404})
		return
	}
	if h.busy {
		hecReply(w, 503, map[string]any{"text": "Server is busy", "code": 9})
		return
	}
	dec := json.NewDecoder(r.Body)
	var ids []string
	for n := 0; ; n++ {
		var ev struct {
			Time   float64         `json:"time"`
			Event  json.RawMessage `json:"event"`
			Fields map[string]string
		}
		if err := dec.Decode(&ev); err == io.EOF {
			break
		} else if err != nil {
			hecReply(w, 400, map[string]any{"text": "Invalid data format", "code": 6, "invalid-event-number": n})
			return
		}
		id := ev.Fields["agenttrail_id"]
		if len(ev.Event) == 0 || id == "" || ev.Time == 0 {
			h.index(ids)
			hecReply(w, 400, map[string]any{"text": "Event field is required", "code": 12, "invalid-event-number": n})
			return
		}
		if id == h.poison {
			if !h.ack {
				h.index(ids) // HEC indexed the events before the bad one
			}
			hecReply(w, 400, map[string]any{"text": "Invalid data format", "code": 6, "invalid-event-number": n})
			return
		}
		ids = append(ids, id)
	}
	if !h.ack {
		h.index(ids)
		hecReply(w, 200, map[string]any{"text": "Success", "code": 0})
		return
	}
	h.nextAck++
	h.pending[h.nextAck] = ids
	hecReply(w, 200, map[string]any{"text": "Success", "code": 0, "ackId": h.nextAck})
}

func (h *hecStandIn) index(ids []string) {
	for _, id := range ids {
		if h.seen[id] == 0 {
			h.ids = append(h.ids, id)
		}
		h.seen[id]++
	}
}

func (h *hecStandIn) indexed() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.ids...)
}

func seqsOfIDs(t *testing.T, ids []string, events []agenttrail.Event) []int64 {
	t.Helper()
	m := byID(events)
	var out []int64
	for _, id := range ids {
		e, ok := m[id]
		if !ok {
			t.Fatalf("receiver has an event %q that was never stored", id)
		}
		out = append(out, e.Seq)
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestHEC: with and without acknowledgement, through a busy spell during
// ingest and one event HEC refuses: that one is a dead letter, every other
// is indexed, first seen in seq order.
func TestHEC(t *testing.T) {
	for _, ack := range []bool{true, false} {
		t.Run(fmt.Sprintf("ack=%v", ack), func(t *testing.T) {
			store, _ := openStore(t, 0)
			tok := filepath.Join(t.TempDir(), "hec.token")
			os.WriteFile(tok, []byte("00000000-1111-2222-3333-444444444444\n"), 0o600)
			h, srv := newHECStandIn(t, "00000000-1111-2222-3333-444444444444", ack)
			c := testConfig(t, Config{Type: TypeSplunkHEC, URL: srv.URL, TokenFile: tok, Ack: ack, Format: "ocsf", Batch: BatchLimits{MaxEvents: 100}})
			set := start(t, store, c)
			all := ingestThroughOutage(t, store, 4, 30, 2*time.Millisecond, func(batch int) bool { return batch >= 8 && batch < 16 }, func(down bool) {
				h.mu.Lock()
				h.busy = down
				h.mu.Unlock()
			})
			waitCaughtUp(t, set, "test")
			// Now one event is refused.
			h.mu.Lock()
			more := storetest.AppendAll(t, store, storetest.Events(5, 300, storetest.Base().Add(3*time.Hour), time.Hour), 300)
			bad := more[137]
			h.poison = bad.ID
			h.mu.Unlock()
			waitCaughtUp(t, set, "test")
			var want []agenttrail.Event
			for _, e := range append(all, more...) {
				if e.ID != bad.ID {
					want = append(want, e)
				}
			}
			checkSeqs(t, seqsOfIDs(t, h.indexed(), want), want, false)
			letters, _ := set.DeadLetters(t.Context(), "test", 0, 10)
			if len(letters) != 1 || letters[0].EventID != bad.ID || !strings.Contains(letters[0].Reason, "code 6") {
				t.Fatalf("dead letters = %+v, want the refused event", letters)
			}
		})
	}
}

// TestHECHalts: a bad token halts the sink, reported, and delivers nothing.
func TestHECHalts(t *testing.T) {
	store, _ := openStore(t, 10)
	t.Setenv("AGENTTRAIL_TEST_HEC", "wrong")
	h, srv := newHECStandIn(t, "right", false)
	set := start(t, store, testConfig(t, Config{Type: TypeSplunkHEC, URL: srv.URL, TokenEnv: "AGENTTRAIL_TEST_HEC"}))
	waitFor(t, "the last error", func() bool {
		st, _ := set.Status(t.Context())
		return strings.Contains(st[0].LastError, "code 3")
	})
	if n := len(h.indexed()); n != 0 {
		t.Errorf("indexed %d events with a bad token", n)
	}
}
