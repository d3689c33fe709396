package sink

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/sqlite"
	"github.com/agenttrail/agenttrail/storetest"
)

// openSQLite returns a new, empty embedded store, closed when tb ends.
func openSQLite(tb testing.TB) (*sqlite.Store, error) {
	s, err := sqlite.Open(context.Background(), filepath.Join(tb.TempDir(), "at.db"), sqlite.Config{})
	if err != nil {
		return nil, err
	}
	tb.Cleanup(func() { s.Close() })
	return s, nil
}

// openStore returns a new embedded store holding n generated events.
func openStore(t *testing.T, n int) (*sqlite.Store, []agenttrail.Event) {
	t.Helper()
	s, err := openSQLite(t)
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		return s, nil
	}
	return s, storetest.AppendAll(t, s, storetest.Events(1, n, storetest.Base(), time.Hour), 500)
}

// testConfig is a checked sink config with fast retries.
func testConfig(t *testing.T, c Config) Config {
	t.Helper()
	if c.Name == "" {
		c.Name = "test"
	}
	c.Retry = Retry{Min: Duration(10 * time.Millisecond), Max: Duration(200 * time.Millisecond)}
	if c.Batch.MaxWait == 0 {
		c.Batch.MaxWait = Duration(20 * time.Millisecond)
	}
	if err := c.Check(); err != nil {
		t.Fatal(err)
	}
	return c
}

// start runs a Set of cfgs over store until the test ends.
func start(t *testing.T, store Store, cfgs ...Config) *Set {
	t.Helper()
	set, err := New(cfgs, store, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, r := range set.Runners() {
		wg.Add(1)
		go func() { defer wg.Done(); r.Run(ctx) }()
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	return set
}

// waitCaughtUp waits until the sink named name has its checkpoint at the
// store's head.
func waitCaughtUp(t *testing.T, set *Set, name string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		st, err := set.Status(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range st {
			if s.Name == name && s.Checkpoint == s.Head && s.Head > 0 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("sink %s did not catch up: %+v", name, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkSeqs fails unless got holds every seq of want, in order, once each
// (dups counts the ones seen more than once, which at-least-once allows
// only where asked).
func checkSeqs(t *testing.T, got []int64, want []agenttrail.Event, allowDups bool) {
	t.Helper()
	seen := map[int64]bool{}
	var uniq []int64
	dups := 0
	for _, s := range got {
		if seen[s] {
			dups++
			continue
		}
		seen[s] = true
		uniq = append(uniq, s)
	}
	if len(uniq) != len(want) {
		t.Fatalf("delivered %d distinct events, want %d", len(uniq), len(want))
	}
	for i := range uniq {
		if uniq[i] != want[i].Seq {
			t.Fatalf("delivered[%d] = seq %d, want %d (seq order)", i, uniq[i], want[i].Seq)
		}
	}
	if dups > 0 && !allowDups {
		t.Fatalf("delivered %d duplicates, want 0", dups)
	}
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 4<<20)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

func seqsOfNDJSON(t *testing.T, lines []string) []int64 {
	t.Helper()
	var out []int64
	for _, l := range lines {
		var e agenttrail.Event
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		out = append(out, e.Seq)
	}
	return out
}

func TestFileDelivers(t *testing.T) {
	store, events := openStore(t, 1200)
	path := filepath.Join(t.TempDir(), "out", "trail.ndjson")
	set := start(t, store, testConfig(t, Config{Type: TypeFile, Path: path}))
	waitCaughtUp(t, set, "test")
	checkSeqs(t, seqsOfNDJSON(t, readLines(t, path)), events, false)
	if cp, _ := store.Checkpoint(t.Context(), "test"); cp != 0 && cp != events[len(events)-1].Seq {
		t.Errorf("stored checkpoint = %d", cp)
	}
}

func TestFileCSVRotatesAndGzips(t *testing.T) {
	store, events := openStore(t, 600)
	dir := t.TempDir()
	path := filepath.Join(dir, "trail.csv")
	c := testConfig(t, Config{Type: TypeFile, Path: path, Format: "csv", Batch: BatchLimits{MaxEvents: 100}, Rotate: Rotate{MaxBytes: 20 << 10, Gzip: true}})
	set := start(t, store, c)
	waitCaughtUp(t, set, "test")
	files, _ := filepath.Glob(filepath.Join(dir, "trail-*.csv.gz"))
	if len(files) < 2 {
		t.Fatalf("rotated files = %v, want several gzipped ones", files)
	}
	rows := 0
	for _, f := range append(files, path) {
		var r io.Reader
		fh, err := os.Open(f)
		if err != nil {
			continue // the live file may not exist right after a rotation
		}
		r = fh
		if strings.HasSuffix(f, ".gz") {
			if r, err = gzipReader(fh); err != nil {
				t.Fatal(err)
			}
		}
		b, _ := io.ReadAll(r)
		fh.Close()
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if !strings.HasPrefix(lines[0], "id,time,") {
			t.Errorf("%s does not start with the CSV header: %q", f, lines[0])
		}
		rows += len(lines) - 1
	}
	if rows != len(events) {
		t.Errorf("CSV rows = %d, want %d", rows, len(events))
	}
}

// webhookReceiver is a webhook endpoint that checks signatures and keeps
// what it took, deduplicating by event id as a receiver with the
// Idempotency-Key would.
type webhookReceiver struct {
	t      *testing.T
	secret string
	sink   string // the sink's name, which starts each Idempotency-Key

	mu       sync.Mutex
	down     bool
	refuse   string // an event id whose batch is refused with 400
	seqs     []int64
	dups     int
	keys     map[string]bool
	seen     map[string]bool
	requests int
	answer   func(w http.ResponseWriter) bool // a special answer, when it returns true
}

func newWebhookReceiver(t *testing.T, secret string) (*webhookReceiver, *httptest.Server) {
	rc := &webhookReceiver{t: t, secret: secret, sink: "hook", keys: map[string]bool{}, seen: map[string]bool{}}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	return rc, srv
}

func (rc *webhookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.requests++
	if rc.answer != nil && rc.answer(w) {
		return
	}
	if rc.down {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if rc.secret != "" {
		sig := r.Header.Get("X-Agenttrail-Signature")
		var ts int64
		fmt.Sscanf(sig, "t=%d,", &ts)
		if sig != Sign([]byte(rc.secret), time.Unix(ts, 0), body) || time.Since(time.Unix(ts, 0)) > 5*time.Minute {
			rc.t.Errorf("bad signature %q", sig)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
	}
	if r.Header.Get("Content-Type") != "application/x-ndjson" || !strings.HasPrefix(r.Header.Get("Idempotency-Key"), rc.sink+"-") {
		rc.t.Errorf("headers %v", r.Header)
	}
	var events []agenttrail.Event
	for _, l := range strings.Split(strings.TrimSpace(string(body)), "\n") {
		var e agenttrail.Event
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if rc.refuse != "" && e.ID == rc.refuse {
			http.Error(w, "event "+e.ID+" is not acceptable", http.StatusBadRequest)
			return
		}
		events = append(events, e)
	}
	rc.keys[r.Header.Get("Idempotency-Key")] = true
	for _, e := range events {
		if rc.seen[e.Org+"/"+e.ID] {
			rc.dups++
			continue
		}
		rc.seen[e.Org+"/"+e.ID] = true
		rc.seqs = append(rc.seqs, e.Seq)
	}
	w.WriteHeader(http.StatusAccepted)
}

func (rc *webhookReceiver) got() ([]int64, int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]int64(nil), rc.seqs...), rc.dups
}

// TestWebhookRefusesOne: a receiver that refuses one event for good gets
// every other one; that one is a dead letter, and is resent on request.
func TestWebhookRefusesOne(t *testing.T) {
	store, events := openStore(t, 500)
	rc, srv := newWebhookReceiver(t, "")
	bad := events[123]
	rc.refuse = bad.ID
	set := start(t, store, testConfig(t, Config{Name: "hook", Type: TypeWebhook, URL: srv.URL, Batch: BatchLimits{MaxEvents: 200}}))
	waitCaughtUp(t, set, "hook")
	seqs, _ := rc.got()
	var want []agenttrail.Event
	for _, e := range events {
		if e.Seq != bad.Seq {
			want = append(want, e)
		}
	}
	checkSeqs(t, seqs, want, false)
	letters, err := set.DeadLetters(t.Context(), "hook", 0, 10)
	if err != nil || len(letters) != 1 || letters[0].Seq != bad.Seq || letters[0].EventID != bad.ID || !strings.Contains(letters[0].Reason, "400") {
		t.Fatalf("dead letters = %+v, %v; want the one refused event", letters, err)
	}
	st, _ := set.Status(t.Context())
	if st[0].DeadLetters != 1 {
		t.Errorf("status dead_letters = %d, want 1", st[0].DeadLetters)
	}
	// The receiver is fixed; a retry delivers the dead letter and removes it.
	rc.mu.Lock()
	rc.refuse = ""
	rc.mu.Unlock()
	if err := set.RetryDeadLetters("hook"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		n, _ := store.CountDeadLetters(t.Context(), "hook")
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dead letters after retry = %d, want 0", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	seqs, _ = rc.got()
	if seqs[len(seqs)-1] != bad.Seq || len(seqs) != len(events) {
		t.Errorf("after the retry the receiver has %d events, the last seq %d; want %d, %d", len(seqs), seqs[len(seqs)-1], len(events), bad.Seq)
	}
	if err := set.RetryDeadLetters("nope"); err == nil {
		t.Error("RetryDeadLetters(unknown sink) = nil, want an error")
	}
}

// TestRetryAfterHonoured: a 429 with Retry-After: 1 is not tried again
// before a second has passed.
func TestRetryAfterHonoured(t *testing.T) {
	store, events := openStore(t, 10)
	rc, srv := newWebhookReceiver(t, "")
	var first, second time.Time
	rc.answer = func(w http.ResponseWriter) bool {
		switch {
		case first.IsZero():
			first = time.Now()
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return true
		case second.IsZero():
			second = time.Now()
		}
		return false
	}
	set := start(t, store, testConfig(t, Config{Name: "hook", Type: TypeWebhook, URL: srv.URL}))
	waitCaughtUp(t, set, "hook")
	seqs, _ := rc.got()
	checkSeqs(t, seqs, events, false)
	if gap := second.Sub(first); gap < time.Second {
		t.Errorf("retried %v after a Retry-After of 1s", gap)
	}
}

// TestFilterAndReplay: a sink gets only the events its filter matches, its
// checkpoint still reaches the head, and a replay sends them again.
func TestFilterAndReplay(t *testing.T) {
	store, events := openStore(t, 400)
	rc, srv := newWebhookReceiver(t, "")
	src := events[0].Source
	set := start(t, store, testConfig(t, Config{Name: "hook", Type: TypeWebhook, URL: srv.URL, Filter: map[string][]string{"source": {src}}}))
	waitCaughtUp(t, set, "hook")
	var want []agenttrail.Event
	for _, e := range events {
		if e.Source == src {
			want = append(want, e)
		}
	}
	seqs, _ := rc.got()
	checkSeqs(t, seqs, want, false)
	// Replay from the 10th matching event: the receiver sees them again
	// (and drops them as duplicates by id).
	cp, err := set.Replay(t.Context(), "hook", want[9].Seq, time.Time{})
	if err != nil || cp != want[9].Seq-1 {
		t.Fatalf("Replay = %d, %v", cp, err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		if _, dups := rc.got(); dups == len(want)-9 {
			break
		}
		if time.Now().After(deadline) {
			_, dups := rc.got()
			t.Fatalf("after the replay the receiver saw %d duplicates, want %d", dups, len(want)-9)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := set.Replay(t.Context(), "nope", 1, time.Time{}); err == nil {
		t.Error("Replay(unknown sink) = nil, want an error")
	}
}

// TestResumesFromCheckpoint: a second run starts where the first stopped.
func TestResumesFromCheckpoint(t *testing.T) {
	store, events := openStore(t, 300)
	rc, srv := newWebhookReceiver(t, "")
	c := testConfig(t, Config{Name: "hook", Type: TypeWebhook, URL: srv.URL})
	set, _ := New([]Config{c}, store, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { set.Runners()[0].Run(ctx); close(done) }()
	waitCaughtUp(t, set, "hook")
	cancel()
	<-done
	if cp, _ := store.Checkpoint(t.Context(), "hook"); cp != events[len(events)-1].Seq {
		t.Fatalf("checkpoint saved on stop = %d, want %d", cp, events[len(events)-1].Seq)
	}
	more := storetest.AppendAll(t, store, storetest.Events(9, 100, storetest.Base().Add(2*time.Hour), time.Hour), 100)
	set2 := start(t, store, c)
	waitCaughtUp(t, set2, "hook")
	seqs, dups := rc.got()
	checkSeqs(t, seqs, append(events, more...), false)
	if dups != 0 {
		t.Errorf("a clean restart resent %d events", dups)
	}
}

// ingestThroughOutage appends batches of 50 generated events, one every
// pace, telling setDown whether the receiver is down before each (isDown of
// the batch's index) and setting it up at the end: sustained ingest while
// a receiver is down for a while. It returns the events stored.
func ingestThroughOutage(t *testing.T, store *sqlite.Store, seed int64, batches int, pace time.Duration, isDown func(batch int) bool, setDown func(bool)) []agenttrail.Event {
	t.Helper()
	gen := storetest.Events(seed, 50*batches, storetest.Base(), time.Hour)
	var all []agenttrail.Event
	for i := range batches {
		setDown(isDown(i))
		all = append(all, storetest.AppendAll(t, store, gen[50*i:50*i+50], 50)...)
		time.Sleep(pace)
	}
	setDown(false)
	return all
}

func TestBackoff(t *testing.T) {
	r := &Runner{cfg: Config{Retry: Retry{Min: Duration(100 * time.Millisecond), Max: Duration(time.Second)}}}
	for attempt := 1; attempt < 40; attempt++ {
		for range 50 {
			d := r.backoff(attempt, 0)
			ceil := min(time.Second, 100*time.Millisecond<<min(attempt-1, 20))
			if d < 0 || d > ceil {
				t.Fatalf("backoff(%d) = %v, want within [0, %v]", attempt, d, ceil)
			}
		}
	}
	if d := r.backoff(1, 700*time.Millisecond); d < 700*time.Millisecond {
		t.Errorf("backoff with Retry-After 700ms = %v", d)
	}
	if d := r.backoff(1, time.Hour); d != maxRetryAfter {
		t.Errorf("backoff with Retry-After 1h = %v, want %v", d, maxRetryAfter)
	}
}

func gzipReader(r io.Reader) (io.Reader, error) { return gzip.NewReader(r) }
