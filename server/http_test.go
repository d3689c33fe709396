package server

import (
	"net/http"
	"strings"
	"testing"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/wire"
)

func TestHealth(t *testing.T) { forEachStore(t, testHealth) }

func testHealth(t *testing.T, o options) {
	o.now = testNow
	e := newEnv(t, o)
	for _, path := range []string{"/livez", "/readyz"} {
		var s wire.Status
		e.getJSON(t, path, &s)
		if s.Status != "ok" {
			t.Errorf("GET %s = %+v, want status ok", path, s)
		}
	}
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}
	r := e.get(t, "/readyz")
	p := problemFrom(t, "GET /readyz with the store closed", r, http.StatusServiceUnavailable)
	if p.Code != agenttrail.EUNAVAILABLE || !strings.Contains(p.Detail, "store") || r.header.Get("Retry-After") == "" {
		t.Errorf("GET /readyz with the store closed = %+v (Retry-After %q), want unavailable naming the store", p, r.header.Get("Retry-After"))
	}
	var s wire.Status
	e.getJSON(t, "/livez", &s) // the process is still up
}

func TestMetricsExposeIngestCounters(t *testing.T) { forEachStore(t, testMetricsExposeIngestCounters) }

func testMetricsExposeIngestCounters(t *testing.T, o options) {
	o.now = testNow
	e := newEnv(t, o)
	body := validEvent("m-1") + "\n" + validEvent("m-2") + "\n" + validEvent("m-1") + "\n" + `{"actor_type":"robot"}` + "\n"
	decodeIngest(t, "POST", e.post(t, "application/x-ndjson", []byte(body)))
	r := e.get(t, "/metrics")
	if r.status != http.StatusOK {
		t.Fatalf("GET /metrics = %d, want 200", r.status)
	}
	for _, want := range []string{
		"agenttrail_ingest_accepted_total 2\n",
		"agenttrail_ingest_duplicates_total 1\n",
		`agenttrail_ingest_rejected_total{reason="invalid"} 1` + "\n",
		`agenttrail_ingest_dropped_total{reason="queue_full"} 0` + "\n",
		"agenttrail_ingest_queue_depth 0\n",
		"agenttrail_ingest_commit_seconds_count 1\n",
		"agenttrail_ingest_batch_events_sum 3\n",
		`agenttrail_http_requests_total{code="200",route="POST /v1/events"} 1` + "\n",
	} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("GET /metrics lacks %q", strings.TrimSpace(want))
		}
	}
}

func TestUnroutedProblems(t *testing.T) {
	e := newEnv(t, options{now: testNow})
	p := problemFrom(t, "GET /v2/events", e.get(t, "/v2/events"), http.StatusNotFound)
	if p.Code != agenttrail.ENOTFOUND || !strings.Contains(p.Detail, "/v2/events") {
		t.Errorf("GET /v2/events problem = %+v, want not_found naming the path", p)
	}
	for _, tc := range []struct {
		method, path, allow string
	}{
		{http.MethodDelete, "/v1/events", "GET, HEAD, POST"},
		{http.MethodPut, "/v1/events/x", "GET, HEAD"},
		{http.MethodPost, "/readyz", "GET, HEAD"},
	} {
		r := e.do(t, tc.method, tc.path, nil, nil)
		problemFrom(t, tc.method+" "+tc.path, r, http.StatusMethodNotAllowed)
		if got := r.header.Get("Allow"); got != tc.allow {
			t.Errorf("%s %s Allow = %q, want %q", tc.method, tc.path, got, tc.allow)
		}
	}
}

func TestProblemStatuses(t *testing.T) {
	for _, tc := range []struct {
		code   string
		status int
		detail string
	}{
		{agenttrail.EINVALID, 400, "limit: bad"},
		{agenttrail.ENOTFOUND, 404, "limit: bad"},
		{agenttrail.ECONFLICT, 409, "limit: bad"},
		{agenttrail.ETOOLARGE, 413, "limit: bad"},
		{agenttrail.EUNAUTHORIZED, 401, "limit: bad"},
		{agenttrail.EFORBIDDEN, 403, "limit: bad"},
		{agenttrail.ERATELIMIT, 429, "limit: bad"},
		{agenttrail.EUNAVAILABLE, 503, "limit: bad"},
		{agenttrail.EINTERNAL, 500, "internal error"},
		{"made-up", 500, "internal error"},
	} {
		err := &agenttrail.Error{Code: tc.code, Field: "limit", Message: "bad"}
		p := wire.ProblemOf(err)
		if p.Status != tc.status || p.Detail != tc.detail || p.Type != wire.ProblemTypePrefix+p.Code {
			t.Errorf("wire.ProblemOf(%s) = %+v, want status %d detail %q", tc.code, p, tc.status, tc.detail)
		}
		if tc.status == 500 && (p.Field != "" || p.Code != agenttrail.EINTERNAL) {
			t.Errorf("wire.ProblemOf(%s) = %+v, want an internal error that shows nothing", tc.code, p)
		}
	}
}

// TestServeFailsWhenItsListenerDoes closes the listener under a serving
// Server: Serve must return the error, so that the process's run group
// stops, rather than return nil as after Shutdown.
func TestServeFailsWhenItsListenerDoes(t *testing.T) {
	srv := New(Config{Addr: "127.0.0.1:0", Store: nopStore{}, Ingest: nopWriter{}})
	if err := srv.Open(); err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	srv.mu.Lock()
	srv.ln.Close()
	srv.mu.Unlock()
	if err := <-served; err == nil {
		t.Errorf("Serve after its listener closed = nil, want the error")
	}
	if err := srv.Shutdown(t.Context()); err != nil {
		t.Errorf("Shutdown = %v", err)
	}
	served2 := make(chan error, 1)
	srv2 := New(Config{Addr: "127.0.0.1:0", Store: nopStore{}, Ingest: nopWriter{}})
	if err := srv2.Open(); err != nil {
		t.Fatal(err)
	}
	go func() { served2 <- srv2.Serve() }()
	if err := srv2.Shutdown(t.Context()); err != nil {
		t.Errorf("Shutdown = %v", err)
	}
	if err := <-served2; err != nil {
		t.Errorf("Serve after Shutdown = %v, want nil", err)
	}
}
