// Package server is the HTTP API of agenttrail (DESIGN §2): ingest, reads,
// aggregations, health, metrics and the OpenAPI document, with one error
// format (RFC 9457 problem details) and one place where callers are scoped
// to their org.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/redact"
	"github.com/prometheus/client_golang/prometheus"
)

// Submitter queues normalized, validated events and returns once they are
// durable: how many were stored and how many were duplicates. It must be
// safe for concurrent use. *ingest.Pipeline implements it.
type Submitter interface {
	Submit(ctx context.Context, events []agenttrail.Event) (agenttrail.AppendResult, error)
}

// DefaultAddr is the address a Server listens on when Config.Addr is empty:
// loopback only, because a server without tokens must not be reachable by
// accident.
const DefaultAddr = "127.0.0.1:7311"

// Config is what a Server needs. Store and Ingest are required; every other
// field has a default.
type Config struct {
	Addr     string               // listen address, e.g. "127.0.0.1:7311" or "127.0.0.1:0"; "" means DefaultAddr
	Store    agenttrail.Store     // reads and readiness; writes go through Ingest
	Ingest   Submitter            // the write path of POST /v1/events
	Spool    Degrader             // the server-side spool behind Ingest, for /readyz; nil when there is none
	Limits   agenttrail.Limits    // zero fields take agenttrail.DefaultLimits'
	Logger   *slog.Logger         // nil discards
	Registry *prometheus.Registry // served on /metrics, and the server's own metrics are registered on it; nil means a private one
	Now      func() time.Time     // nil means time.Now
	Auth     Authenticator        // nil: every caller is an admin of all orgs

	// Redactor replaces secrets in ingested events before they are stored;
	// nil means redact.Builtin(). Nothing is stored unredacted.
	Redactor *redact.Redactor
	// Audit records every read and every token change of a *TokenAuth as
	// an audit event (source "audit"), while the server is open.
	Audit bool
	// RateLimit bounds each principal's requests; the zero value is no
	// limit.
	RateLimit RateLimit
	// TLS, when set, makes Open serve HTTPS with it.
	TLS *tls.Config
	// CursorKey authenticates the cursors of GET /v1/events (HMAC-SHA256).
	// Empty means a random key: cursors then expire when the process
	// restarts. LoadCursorKey keeps one in the data directory.
	CursorKey []byte
}

// Server serves the HTTP API. New builds it; Open binds its listener and
// serves in a goroutine until Close. Handler may be used without Open (for
// example with httptest). All methods are safe for concurrent use; Open is
// called at most once.
type Server struct {
	store  agenttrail.Store
	ingest Submitter
	spool  Degrader
	limits agenttrail.Limits
	log    *slog.Logger
	reg    *prometheus.Registry
	now    func() time.Time
	auth   Authenticator
	addr   string

	redactor *redact.Redactor
	audit    *auditor // nil when not auditing
	limiter  *rateLimiter
	tls      *tls.Config
	cursors  cursorSigner

	routes  []route
	mux     *http.ServeMux
	handler http.Handler
	metrics *httpMetrics
	bufs    sync.Pool // *[]byte request bodies, reused across POSTs

	mu     sync.Mutex
	srv    *http.Server
	ln     net.Listener
	served chan error // Serve's result, once it returned
}

// New returns a Server for cfg. It registers the server's metrics on
// cfg.Registry, so it panics if two Servers share one registry, and it
// panics when cfg.Store or cfg.Ingest is nil: both are programming errors.
func New(cfg Config) *Server {
	if cfg.Store == nil || cfg.Ingest == nil {
		panic("server: Config.Store and Config.Ingest are required")
	}
	s := &Server{
		store:  cfg.Store,
		ingest: cfg.Ingest,
		spool:  cfg.Spool,
		limits: limitsOf(cfg.Limits),
		log:    cfg.Logger,
		reg:    cfg.Registry,
		now:    cfg.Now,
		auth:   cfg.Auth,
		addr:   cfg.Addr,

		redactor: cfg.Redactor,
		tls:      cfg.TLS,
		cursors:  newCursorSigner(cfg.CursorKey),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.redactor == nil {
		s.redactor = redact.Builtin()
	}
	if s.reg == nil {
		s.reg = prometheus.NewRegistry()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.addr == "" {
		s.addr = DefaultAddr
	}
	s.metrics = newHTTPMetrics(s.reg)
	s.limiter = newRateLimiter(cfg.RateLimit, s.reg)
	if cfg.Audit {
		s.audit = newAuditor(s, s.reg)
		if ta, ok := s.auth.(*TokenAuth); ok {
			ta.watch(s.audit.auditTokens)
		}
	}
	s.routes = s.routeTable()
	s.mux = http.NewServeMux()
	for _, rt := range s.routes {
		s.mux.Handle(rt.method+" "+rt.path, s.instrument(rt, s.authenticate(rt, rt.handler)))
	}
	s.handler = http.HandlerFunc(s.serveHTTP)
	return s
}

// limitsOf fills the zero fields of l from agenttrail.DefaultLimits.
func limitsOf(l agenttrail.Limits) agenttrail.Limits {
	d := agenttrail.DefaultLimits
	if l.MaxEventBytes <= 0 {
		l.MaxEventBytes = d.MaxEventBytes
	}
	if l.MaxRequestBytes <= 0 {
		l.MaxRequestBytes = d.MaxRequestBytes
	}
	if l.MaxBatchEvents <= 0 {
		l.MaxBatchEvents = d.MaxBatchEvents
	}
	return l
}

// Handler returns the server's HTTP handler: every route, with
// authentication, metrics, and problem+json answers for unknown routes
// (404) and wrong methods (405).
func (s *Server) Handler() http.Handler { return s.handler }

// Timeouts of the http.Server Open starts. Writes get as long as reads: an
// ingest answer waits for its commit, and a slow client may take a while to
// send 16 MiB.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 2 * time.Minute
	writeTimeout      = 2 * time.Minute
	idleTimeout       = 2 * time.Minute
)

// Open binds the listener, so a bad or busy address fails here, and serves
// in a goroutine until Close.
func (s *Server) Open() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return errors.New("server: already open")
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.addr, err)
	}
	if s.tls != nil {
		ln = tls.NewListener(ln, s.tls)
	}
	s.ln = ln
	if s.audit != nil {
		s.audit.start()
	}
	s.srv = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.served = make(chan error, 1)
	go func(srv *http.Server) {
		err := srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.served <- err
	}(s.srv)
	s.log.Info("serving HTTP", "addr", ln.Addr().String())
	return nil
}

// URL returns the base URL the server listens on, such as
// "http://127.0.0.1:7311", or "" before Open. A wildcard listen address is
// reported as loopback, which reaches it.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	addr := s.ln.Addr().(*net.TCPAddr)
	host := addr.IP.String()
	if addr.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	scheme := "http://"
	if s.tls != nil {
		scheme = "https://"
	}
	return scheme + net.JoinHostPort(host, fmt.Sprint(addr.Port))
}

// Close stops accepting connections and waits, until ctx ends, for requests
// in flight to finish; then it closes what is left. It returns the error
// that stopped serving, if any. Close before Open does nothing.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	srv, served := s.srv, s.served
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	err := srv.Shutdown(ctx)
	if err != nil {
		_ = srv.Close()
	}
	if serr := <-served; serr != nil && err == nil {
		err = serr
	}
	if s.audit != nil {
		s.audit.stop() // after the last read, before the pipeline stops
	}
	served <- nil // a second Close returns at once
	return err
}
