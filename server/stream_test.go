package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
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
	s.quiet(t, 700*time.Millisecond) // nothing from before the stream started

	live := newEvents("live", "acme", "a1", 600) // more than a page
	e.ingest(t, live[:5])
	seqs := wantEvents(t, s, live[:5])
	e.ingest(t, live[5:])
	wantEvents(t, s, live[5:])

	// A reconnect with Last-Event-ID resumes right after it.
	r := e.openStream(t, "/v1/stream", http.Header{"Last-Event-ID": {strconv.FormatInt(seqs[2], 10)}})
	wantEvents(t, r, live[3:])
	r.quiet(t, 300*time.Millisecond)
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
	byActor.quiet(t, 300*time.Millisecond)
	scoped.quiet(t, 0)
	other.quiet(t, 0)
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
	st := e.srv.newStreams(1, 20*time.Millisecond, 100*time.Millisecond)
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
// events it does not match and wants it to miss none that it does.
func TestStreamProbeSkipsUnmatched(t *testing.T) {
	e := newEnv(t, options{now: testNow})
	st := e.srv.newStreams(4, 10*time.Millisecond, time.Minute)
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
		time.Sleep(60 * time.Millisecond) // a probe passes the noise
		rare := newEvents("rare"+strconv.Itoa(round), "acme", "rare", 2)
		e.ingest(t, rare)
		want = append(want, rare...)
	}
	for _, s := range []*sseStream{live, since} {
		wantEvents(t, s, want)
		s.quiet(t, 200*time.Millisecond)
	}
}
