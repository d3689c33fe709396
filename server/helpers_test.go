package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/ingest"
	"github.com/agenttrail/agenttrail/sqlite"
	"github.com/agenttrail/agenttrail/wire"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// clock is a settable time source for a Server.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// env is a Server on a real listener in front of a real ingest pipeline and
// store (SQLite unless options say otherwise), torn down when the test ends.
type env struct {
	srv      *Server
	url      string
	store    agenttrail.Store
	pipeline *ingest.Pipeline
	reg      *prometheus.Registry
	clock    *clock
	client   *http.Client
	stopRun  func()
	stop     func(context.Context) error // the server: see serveTest
}

// serveTest serves srv the way a process runs it: Open, then Serve and
// RunAudit as actors. The function it returns stops them in the order the
// process's run group does: Shutdown, then the audit writer once Shutdown
// has returned. It returns Shutdown's error, fails t if Serve failed, and
// does nothing when called again.
func serveTest(t testing.TB, srv *Server) func(context.Context) error {
	t.Helper()
	if err := srv.Open(); err != nil {
		t.Fatalf("Open: %v", err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	auditCtx, stopAudit := context.WithCancel(context.Background())
	audited := make(chan error, 1)
	go func() { audited <- srv.RunAudit(auditCtx) }()
	var once sync.Once
	return func(ctx context.Context) error {
		var err error
		once.Do(func() {
			err = srv.Shutdown(ctx)
			if serr := <-served; serr != nil {
				t.Errorf("Serve = %v", serr)
			}
			stopAudit()
			<-audited
		})
		return err
	}
}

type options struct {
	auth   Authenticator
	limits agenttrail.Limits
	ingest ingest.Config
	now    time.Time // zero: the real time at start
	logger *slog.Logger
	// store opens the store the server runs on; nil is SQLite in
	// t.TempDir(). newEnv closes the store when the test ends.
	store func(t testing.TB) agenttrail.Store
	// sinks is the server's Sinks; nil: none.
	sinks Sinks
	// audit records the server's own actions (Config.Audit).
	audit bool
}

// forEachStore runs test once per store, as subtests "sqlite" and
// "postgres", with options naming that store: the API must behave the same
// on both. The PostgreSQL run skips unless AGENTTRAIL_TEST_POSTGRES names a
// server, and fails if it names one that cannot be reached.
func forEachStore(t *testing.T, test func(t *testing.T, o options)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { test(t, options{}) })
	t.Run("postgres", func(t *testing.T) {
		test(t, options{store: func(t testing.TB) agenttrail.Store {
			st, _ := openPostgres(t) // a schema of its own, dropped at the end
			return st
		}})
	})
}

func newEnv(t testing.TB, o options) *env {
	t.Helper()
	logger := o.logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var store agenttrail.Store
	if o.store != nil {
		store = o.store(t)
	} else {
		st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "trail.db"), sqlite.Config{Logger: logger})
		if err != nil {
			t.Fatalf("sqlite.Open: %v", err)
		}
		store = st
	}
	reg := prometheus.NewRegistry()
	c := &clock{now: o.now}
	if c.now.IsZero() {
		c.now = time.Now()
	}
	cfg := o.ingest
	cfg.Logger, cfg.Registerer, cfg.Now = logger, reg, c.Now
	p := ingest.New(store, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- p.Run(ctx) }()
	var once sync.Once
	stopRun := func() {
		once.Do(func() {
			cancel()
			if err := <-ran; err != nil {
				t.Errorf("pipeline Run = %v", err)
			}
		})
	}

	srv := New(Config{
		Addr:     "127.0.0.1:0",
		Store:    store,
		Ingest:   p,
		Limits:   o.limits,
		Logger:   logger,
		Registry: reg,
		Now:      c.Now,
		Auth:     o.auth,
		Sinks:    o.sinks,
		Audit:    o.audit,
	})
	stop := serveTest(t, srv)
	transport := &http.Transport{MaxIdleConnsPerHost: 16}
	e := &env{
		srv: srv, url: srv.URL(), store: store, pipeline: p, reg: reg, clock: c,
		client: &http.Client{Transport: transport, Timeout: time.Minute}, stopRun: stopRun, stop: stop,
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := stop(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		transport.CloseIdleConnections()
		stopRun()
		_ = store.Close()
	})
	return e
}

// response is an HTTP answer read in full.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (e *env) do(t testing.TB, method, path string, header http.Header, body []byte) response {
	t.Helper()
	req, err := http.NewRequest(method, e.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("NewRequest: %v", err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

func (e *env) get(t testing.TB, path string) response {
	t.Helper()
	return e.do(t, http.MethodGet, path, nil, nil)
}

func (e *env) post(t testing.TB, contentType string, body []byte) response {
	t.Helper()
	return e.do(t, http.MethodPost, "/v1/events", http.Header{"Content-Type": {contentType}}, body)
}

// getJSON GETs path, wants status 200, and decodes the answer into v.
func (e *env) getJSON(t testing.TB, path string, v any) {
	t.Helper()
	r := e.get(t, path)
	if r.status != http.StatusOK {
		t.Fatalf("GET %s = %d, want 200: %s", path, r.status, r.body)
	}
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("GET %s: decoding %s: %v", path, r.body, err)
	}
}

// ingest POSTs events as NDJSON and wants every one accepted.
func (e *env) ingest(t testing.TB, events []agenttrail.Event) {
	t.Helper()
	r := e.post(t, "application/x-ndjson", ndjson(t, events))
	var got wire.IngestResult
	if r.status != http.StatusOK || json.Unmarshal(r.body, &got) != nil {
		t.Fatalf("POST /v1/events (%d events) = %d: %s", len(events), r.status, r.body)
	}
	if got.Accepted != len(events) || len(got.Rejected) != 0 {
		t.Fatalf("POST /v1/events (%d new events) = %+v, want all accepted", len(events), got)
	}
}

func ndjson(t testing.TB, events []agenttrail.Event) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	for i := range events {
		if err := enc.Encode(&events[i]); err != nil {
			t.Fatalf("encoding event: %v", err)
		}
	}
	return b.Bytes()
}

// problem decodes r as a problem+json answer with the given status.
func problemFrom(t testing.TB, what string, r response, status int) wire.Problem {
	t.Helper()
	if r.status != status {
		t.Fatalf("%s = %d, want %d: %s", what, r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("%s Content-Type = %q, want application/problem+json", what, ct)
	}
	var p wire.Problem
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("%s: decoding problem %s: %v", what, r.body, err)
	}
	if p.Status != status || p.Title != http.StatusText(status) || p.Type == "" || p.Detail == "" || p.Code == "" {
		t.Errorf("%s problem = %+v, want type, title %q, status %d, detail and code set", what, p, http.StatusText(status), status)
	}
	return p
}

// pageAll follows next_cursor from path (which holds the filters and sort)
// until the last page, and returns every event seen.
func (e *env) pageAll(t testing.TB, path string, between func()) []agenttrail.Event {
	t.Helper()
	var all []agenttrail.Event
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	cursor := ""
	for i := 0; ; i++ {
		if i > 1000 {
			t.Fatalf("GET %s: more than 1000 pages", path)
		}
		p := path
		if cursor != "" {
			p += sep + "cursor=" + url.QueryEscape(cursor)
		}
		var page wire.Page
		e.getJSON(t, p, &page)
		all = append(all, page.Events...)
		if page.NextCursor == "" || len(page.Events) == 0 {
			return all
		}
		cursor = page.NextCursor
		if between != nil {
			between()
		}
	}
}

// tokens is an Authenticator for tests: each bearer token names a
// principal.
type tokens map[string]Principal

func (tk tokens) Authenticate(r *http.Request) (Principal, error) {
	h, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return Principal{}, agenttrail.Errorf(agenttrail.EUNAUTHORIZED, "a bearer token is required")
	}
	p, ok := tk[h]
	if !ok {
		return Principal{}, agenttrail.Errorf(agenttrail.EUNAUTHORIZED, "unknown token")
	}
	return p, nil
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// nopStore and nopWriter satisfy Config for tests that only build a
// Server to inspect it and never serve a request.
type nopStore struct{ agenttrail.Store }

type nopWriter struct{ Writer }

var (
	_ Writer = (*ingest.Pipeline)(nil)
	_ Reader = agenttrail.Store(nil)
)
