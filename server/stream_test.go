package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/storetest"
)

// storetestEvents returns n generated events of both orgs in the three
// days before testNow.
func storetestEvents(n int) []agenttrail.Event {
	return storetest.Events(int64(n), n, testNow.Add(-72*time.Hour), 71*time.Hour)
}

// testClient is an HTTP client whose connections are closed when the test
// ends.
func testClient(t testing.TB) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// newTestHTTPServer serves h on a loopback listener with one-second read
// and write timeouts, much shorter than a stream lives, and returns its
// base URL.
func newTestHTTPServer(t testing.TB, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadTimeout: time.Second, WriteTimeout: time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		<-done
	})
	return "http://" + ln.Addr().String()
}

// newEvents returns n valid events of actor for org, timed at testNow.
func newEvents(prefix, org, actor string, n int) []agenttrail.Event {
	out := make([]agenttrail.Event, n)
	for i := range out {
		out[i] = agenttrail.Event{
			ID: prefix + "-" + strconv.Itoa(i), Time: testNow, ActorType: agenttrail.ActorAgent, ActorID: actor,
			Source: "shell", Action: "shell_exec", Result: agenttrail.ResultSuccess, Org: org,
		}
	}
	return out
}

// wantEvents reads len(want) messages and checks they are want's events,
// in order, with their seqs as ids.
func wantEvents(t *testing.T, s *sseStream, want []agenttrail.Event) []int64 {
	t.Helper()
	var seqs []int64
	var last int64
	for i, w := range want {
		m := s.next(t, 10*time.Second)
		var got agenttrail.Event
		if err := json.Unmarshal([]byte(m.data), &got); err != nil {
			t.Fatalf("message %d data %q: %v", i, m.data, err)
		}
		seq := seqOf(t, m)
		if m.event != "event" || got.ID != w.ID || got.Org != w.Org || got.Seq != seq || seq <= last {
			t.Fatalf("message %d = event %q id %s (%s/%s seq %d), want event %s/%s with a rising seq after %d", i, m.event, m.id, got.Org, got.ID, got.Seq, w.Org, w.ID, last)
		}
		last = seq
		seqs = append(seqs, seq)
	}
	return seqs
}

func TestStreamLiveAndResume(t *testing.T) {
	e := newEnv(t, options{now: testNow})
	e.ingest(t, newEvents("old", "acme", "a1", 20))
	s := e.openStream(t, "/v1/stream", nil)

	live := newEvents("live", "acme", "a1", 600) // more than a page
	e.ingest(t, live[:5])
	seqs := wantEvents(t, s, live[:5]) // an event from before the stream started would come first
	e.ingest(t, live[5:])
	wantEvents(t, s, live[5:])

	// A reconnect with Last-Event-ID resumes right after it.
	r := e.openStream(t, "/v1/stream", http.Header{"Last-Event-ID": {strconv.FormatInt(seqs[2], 10)}})
	wantEvents(t, r, live[3:])
	end := newEvents("end", "acme", "a1", 1)
	e.ingest(t, end)
	wantEvents(t, r, end) // an event sent twice would come before it
}

func TestStreamSinceReplays(t *testing.T) {
	e := newEnv(t, options{now: testNow})
	old := newEvents("old", "acme", "a1", 3)
	old[0].Time = testNow.Add(-48 * time.Hour)
	e.ingest(t, old)
	s := e.openStream(t, "/v1/stream?since=24h", nil)
	wantEvents(t, s, old[1:])
}

func TestStreamFilterAndScope(t *testing.T) {
	tk := tokens{
		"acme":  {Name: "acme-reader", Role: RoleRead, Org: "acme"},
		"admin": {Name: "admin", Role: RoleAdmin, Org: AllOrgs},
	}
	e := newEnv(t, options{now: testNow, auth: tk})
	auth := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }
	byActor := e.openStream(t, "/v1/stream?actor_id=a2", auth("admin"))
	scoped := e.openStream(t, "/v1/stream", auth("acme"))
	other := e.openStream(t, "/v1/stream?org=globex", auth("acme"))

	var batch []agenttrail.Event
	batch = append(batch, newEvents("x", "acme", "a1", 3)...)
	batch = append(batch, newEvents("y", "globex", "a2", 3)...)
	batch = append(batch, newEvents("z", "acme", "a2", 3)...)
	r := e.do(t, http.MethodPost, "/v1/events", http.Header{"Authorization": {"Bearer admin"}, "Content-Type": {"application/x-ndjson"}}, ndjson(t, batch))
	if r.status != http.StatusOK {
		t.Fatalf("ingest = %d: %s", r.status, r.body)
	}
	wantEvents(t, byActor, append(append([]agenttrail.Event{}, batch[3:6]...), batch[6:9]...))
	wantEvents(t, scoped, append(append([]agenttrail.Event{}, batch[0:3]...), batch[6:9]...))
	// An event both match comes next: anything they should not have had
	// would have come before it.
	end := newEvents("end", "acme", "a2", 1)
	if r := e.do(t, http.MethodPost, "/v1/events", http.Header{"Authorization": {"Bearer admin"}, "Content-Type": {"application/x-ndjson"}}, ndjson(t, end)); r.status != http.StatusOK {
		t.Fatalf("ingest = %d: %s", r.status, r.body)
	}
	wantEvents(t, byActor, end)
	wantEvents(t, scoped, end)
	other.quiet(t, 0) // and the stream of another org has had nothing
}

func TestStreamParamErrors(t *testing.T) {
	e := newEnv(t, options{now: testNow})
	for _, c := range []struct {
		query, lastID, field string
	}{
		{"format=csv", "", "format"},
		{"cursor=x", "", "cursor"},
		{"actor_type=robot", "", "actor_type"},
		{"", "abc", "Last-Event-ID"},
		{"", "-4", "Last-Event-ID"},
	} {
		h := http.Header{}
		if c.lastID != "" {
			h.Set("Last-Event-ID", c.lastID)
		}
		p := problemFrom(t, "GET /v1/stream?"+c.query, e.do(t, http.MethodGet, "/v1/stream?"+c.query, h, nil), http.StatusBadRequest)
		if p.Field != c.field {
			t.Errorf("GET /v1/stream?%s (Last-Event-ID %q): field %q, want %q", c.query, c.lastID, p.Field, c.field)
		}
	}
}

// TestStreamOutlivesServerTimeouts serves a stream from an http.Server
// whose read and write timeouts are one second and wants it to deliver an
// event committed after three.
func TestStreamOutlivesServerTimeouts(t *testing.T) {
	e := newEnv(t, options{now: testNow})
	base := newTestHTTPServer(t, e.srv.Handler())
	s := &env{url: base, client: testClient(t)}
	st := s.openStream(t, "/v1/stream", nil)
	time.Sleep(3 * time.Second)
	ev := newEvents("late", "acme", "a1", 1)
	e.ingest(t, ev)
	wantEvents(t, st, ev)
}

func TestStreamLimitAndHeartbeat(t *testing.T) {
	e := newEnv(t, options{now: testNow})
	st := e.srv.newStreams(slotCaps{total: 1}, 20*time.Millisecond, 100*time.Millisecond)
	base := newTestHTTPServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st.ServeHTTP(w, r.WithContext(withPrincipal(r.Context(), anonymous())))
	}))
	hc := testClient(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base, nil)
	resp, err := hc.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("first stream: %v %v", resp, err)
	}
	defer resp.Body.Close()

	second, err := hc.Get(base)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(second.Body)
	second.Body.Close()
	p := problemFrom(t, "second stream", response{status: second.StatusCode, header: second.Header, body: body}, http.StatusServiceUnavailable)
	if second.Header.Get("Retry-After") == "" || !strings.Contains(p.Detail, "streams") {
		t.Errorf("second stream: Retry-After %q, detail %q", second.Header.Get("Retry-After"), p.Detail)
	}

	// The first, idle, sends heartbeats.
	buf := make([]byte, 0, 256)
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(string(buf), ": heartbeat\n\n") && time.Now().Before(deadline) {
		b := make([]byte, 64)
		n, err := resp.Body.Read(b)
		buf = append(buf, b[:n]...)
		if err != nil {
			break
		}
	}
	if !strings.Contains(string(buf), ": heartbeat\n\n") {
		t.Errorf("idle stream sent %q, want a heartbeat comment", buf)
	}
}

// TestStreamEndsWithClient closes a client's stream and wants the handler
// gone (the gauge back to zero; goleak checks goroutines at the end).
func TestStreamEndsWithClient(t *testing.T) {
	e := newEnv(t, options{now: testNow})
	s := e.openStream(t, "/v1/stream", nil)
	gauge := func() float64 {
		mfs, err := e.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "agenttrail_streams_open" {
				return mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		return -1
	}
	waitFor(t, func() bool { return gauge() == 1 })
	s.close()
	waitFor(t, func() bool { return gauge() == 0 })
}

// TestStreamShutdown wants Shutdown to end open streams at once instead of
// waiting for its deadline.
func TestStreamShutdown(t *testing.T) {
	e := newEnv(t, options{now: testNow})
	s := e.openStream(t, "/v1/stream", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := e.stop(ctx); err != nil {
		t.Fatalf("Close with an open stream = %v after %v", err, time.Since(start))
	}
	select {
	case err := <-s.errs:
		if err == nil || errors.Is(err, context.Canceled) {
			t.Errorf("stream ended with %v, want the server closing it", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("stream still open after Close")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestStreamProbeSkipsUnmatched moves a selective stream's position past
// events it does not match, so each poll reads only what came since, and
// wants it to miss none of those it does match. It watches the positions
// the streams read from: without the probe they stay at the last match.
func TestStreamProbeSkipsUnmatched(t *testing.T) {
	reads := &seqReads{}
	e := newEnv(t, options{now: testNow, store: func(t testing.TB) agenttrail.Store {
		reads.Store, _ = openSQLite(t)
		return reads
	}})
	st := e.srv.newStreams(slotCaps{total: 4}, 10*time.Millisecond, time.Minute)
	st.probe = 20 * time.Millisecond
	base := newTestHTTPServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st.ServeHTTP(w, r.WithContext(withPrincipal(r.Context(), anonymous())))
	}))
	c := &env{url: base, client: testClient(t)}
	// Without since the position starts at the head; with since, at the
	// start of the trail, and the first probe looks the head up.
	live := c.openStream(t, "/?actor_id=rare", nil)
	since := c.openStream(t, "/?actor_id=rare&since=1h", nil)
	var want []agenttrail.Event
	for round := range 4 {
		e.ingest(t, newEvents("noise"+strconv.Itoa(round), "acme", "busy", 700))
		head := lastSeq(t, reads.Store)
		waitFor(t, func() bool { return reads.after(false) >= head && reads.after(true) >= head })
		rare := newEvents("rare"+strconv.Itoa(round), "acme", "rare", 2)
		e.ingest(t, rare)
		want = append(want, rare...)
	}
	end := newEvents("end", "acme", "rare", 1)
	e.ingest(t, end)
	for _, s := range []*sseStream{live, since} {
		wantEvents(t, s, append(want, end...)) // a repeat would come before the end
	}
}

// seqReads is a store that notes, for the reads of the rare actor's
// streams in seq order, the furthest position read after, apart for
// streams with since and without.
type seqReads struct {
	agenttrail.Store
	mu       sync.Mutex
	furthest [2]int64 // by whether the filter has a since
}

func (s *seqReads) Query(ctx context.Context, q agenttrail.Query) (agenttrail.Page, error) {
	if q.Sort == agenttrail.SortSeq && q.After != nil && slices.Equal(q.Filter.ActorID, []string{"rare"}) {
		k := 0
		if !q.Filter.Since.IsZero() {
			k = 1
		}
		s.mu.Lock()
		s.furthest[k] = max(s.furthest[k], q.After.Seq)
		s.mu.Unlock()
	}
	return s.Store.Query(ctx, q)
}

// after returns the furthest position read after by the streams with since
// (or without).
func (s *seqReads) after(since bool) int64 {
	k := 0
	if since {
		k = 1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.furthest[k]
}

// lastSeq returns the seq of the newest commit of store.
func lastSeq(t *testing.T, store agenttrail.Store) int64 {
	t.Helper()
	var last int64
	for {
		p, err := store.Query(t.Context(), agenttrail.Query{Sort: agenttrail.SortSeq, Limit: 1000, After: &agenttrail.Position{Seq: last}})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Events) == 0 {
			return last
		}
		last = p.Events[len(p.Events)-1].Seq
	}
}
