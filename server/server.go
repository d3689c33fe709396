// Package server is the HTTP API of agenttrail (docs/architecture.md, "The wire
// contract"): ingest, reads, aggregations, health, metrics and the OpenAPI
// document, with one error format (RFC 9457 problem details) and one place
// where callers are scoped to their org.
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
	"github.com/agenttrail/agenttrail/capture/llm"
	"github.com/agenttrail/agenttrail/ingest"
	"github.com/agenttrail/agenttrail/internal/defaults"
	"github.com/agenttrail/agenttrail/otlp"
	"github.com/prometheus/client_golang/prometheus"
)

// Reader is what the API reads from the store: every read endpoint, and
// Ping for /readyz. The API never writes to the store itself: writes go
// through a Writer. Every agenttrail.Store is a Reader.
type Reader interface {
	agenttrail.Getter
	agenttrail.Querier
	agenttrail.Aggregator
	agenttrail.Serieser
	agenttrail.GapFinder
	agenttrail.Pinger
}

// Writer is the write path: it takes raw events and the caller's scope,
// and answers once the valid ones are durable (see ingest.Pipeline.Write,
// which implements it). It must be safe for concurrent use.
type Writer interface {
	Write(ctx context.Context, events []agenttrail.Event, sc ingest.Scope) (ingest.Result, error)
}

// DefaultAddr is the address a Server listens on when Config.Addr is empty:
// loopback only, because a server without tokens must not be reachable by
// accident.
const DefaultAddr = "127.0.0.1:7311"

// Config is what a Server needs. Store and Ingest are required; every other
// field has a default.
type Config struct {
	Addr   string   // listen address, e.g. "127.0.0.1:7311" or "127.0.0.1:0"; "" means DefaultAddr
	Store  Reader   // reads and readiness; writes go through Ingest
	Ingest Writer   // the write path of POST /v1/events and of the audit
	Spool  Degrader // the server-side spool behind Ingest, for /readyz; nil when there is none
	// NoIngest, when set, is why this node takes no events over HTTP (a
	// query or writer node of a cluster): POST /v1/events answers 503 with
	// it, after authentication. Ingest still takes the server's own audit.
	NoIngest string
	// Cluster, on a node run with NATS, adds the node's view of its
	// cluster to /readyz, and makes it 503 when the node cannot do its
	// part; nil on a single server.
	Cluster  ClusterReporter
	Limits   agenttrail.Limits    // zero fields take agenttrail.DefaultLimits'
	Logger   *slog.Logger         // nil discards
	Registry *prometheus.Registry // served on /metrics, and the server's own metrics are registered on it; nil means a private one
	Now      func() time.Time     // nil means time.Now
	Auth     Authenticator        // nil: every caller is an admin of all orgs

	// Audit records every read and every token change of a *TokenAuth as
	// an audit event (source "audit"), written by RunAudit.
	Audit bool
	// RateLimit bounds each principal's requests; the zero value is no
	// limit.
	RateLimit RateLimit
	// AnonymousRateLimit bounds, per client address, the requests that
	// carry no valid credential: those of the open routes (health,
	// metrics, the API description, sign-in) and those whose
	// authentication failed, so guessing tokens or flooding the open
	// routes is slow. Authenticated requests do not count. The zero value
	// is no limit.
	AnonymousRateLimit RateLimit
	// MetricsAuth makes /metrics need a read or admin token of every org:
	// its counters and labels describe every org's traffic. Off, /metrics
	// is open, for a scraper on a trusted network.
	MetricsAuth bool
	// TLS, when set, makes Open serve HTTPS with it.
	TLS *tls.Config
	// MaxBodyBytes bounds the bytes that the bodies of all ingest requests
	// in flight may hold at once; over it a request is answered 503 with
	// Retry-After. 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Integrity serves /v1/integrity/*; nil answers them 404.
	Integrity *Integrity
	// Prices prices the GenAI usage that arrives over OTLP; nil means the
	// LLM proxy's built-in table (llm.DefaultPrices).
	Prices *llm.Prices
	// CursorKey authenticates the cursors of GET /v1/events (HMAC-SHA256).
	// Empty means a random key: cursors then expire when the process
	// restarts. app.LoadCursorKey keeps one in the data directory.
	CursorKey []byte
	// Sinks answers GET /v1/sinks and its requests; nil: no sinks.
	Sinks Sinks
	// Budgets keeps budgets and decides reservations; nil means Store's
	// when it implements agenttrail.Budgets (both stores do).
	Budgets agenttrail.Budgets
}

// Server serves the HTTP API. New builds it; Open binds its listener, so a
// bad or busy address fails at once; Serve serves until Shutdown. RunAudit
// writes the audit events of reads and token changes: run it beside Serve
// and stop it after Shutdown returned. Handler may be used without Open (for
// example with httptest). All methods are safe for concurrent use; Open,
// Serve and RunAudit are called at most once.
type Server struct {
	store     Reader
	ingest    Writer
	spool     Degrader
	noIngest  string
	cluster   ClusterReporter
	sinks     Sinks
	integrity *Integrity
	limits    agenttrail.Limits
	log       *slog.Logger
	reg       *prometheus.Registry
	now       func() time.Time
	auth      Authenticator
	addr      string
	otlp      *otlp.Mapper

	audit        *auditor // nil when not auditing
	limiter      *rateLimiter
	anonLimiter  *rateLimiter // by client address, for requests without a valid credential
	metricsNeed  Role         // "" (open) or roleMetrics
	exports      *slots
	inflight     *inflight // requests in progress by token, ended on revocation
	tls          *tls.Config
	cursors      cursorSigner
	budgets      agenttrail.Budgets // nil when the store keeps none
	budgetAlerts alertSet

	routes  []route
	mux     *http.ServeMux
	handler http.Handler
	metrics *httpMetrics
	bufs    sync.Pool   // *[]byte request bodies, reused across POSTs
	bodies  *bodyBudget // bytes held by the bodies in flight, server-wide

	mu  sync.Mutex
	srv *http.Server
	ln  net.Listener
}

// New returns a Server for cfg. It registers the server's metrics on
// cfg.Registry, so it panics if two Servers share one registry, and it
// panics when cfg.Store or cfg.Ingest is nil: both are programming errors.
func New(cfg Config) *Server {
	if cfg.Store == nil || cfg.Ingest == nil {
		panic("server: Config.Store and Config.Ingest are required")
	}
	s := &Server{
		store:     cfg.Store,
		ingest:    cfg.Ingest,
		spool:     cfg.Spool,
		noIngest:  cfg.NoIngest,
		cluster:   cfg.Cluster,
		sinks:     cfg.Sinks,
		integrity: cfg.Integrity,
		limits:    limitsOf(cfg.Limits),
		log:       cfg.Logger,
		reg:       cfg.Registry,
		now:       cfg.Now,
		auth:      cfg.Auth,
		addr:      cfg.Addr,

		tls:     cfg.TLS,
		cursors: newCursorSigner(cfg.CursorKey),
		budgets: cfg.Budgets,
	}
	if s.budgets == nil {
		s.budgets, _ = cfg.Store.(agenttrail.Budgets)
	}
	defaults.Logger(&s.log)
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
	s.otlp = newOTLPMapper(cfg.Prices, s.log)
	limited := newRateLimited(s.reg)
	s.limiter = newRateLimiter(cfg.RateLimit, limited, "token")
	s.anonLimiter = newRateLimiter(cfg.AnonymousRateLimit, limited, "address")
	s.bodies = newBodyBudget(cfg.MaxBodyBytes, s.reg)
	s.exports = newSlots("exports", exportCaps)
	s.inflight = newInflight()
	if ta, ok := s.auth.(*TokenAuth); ok {
		ta.watchRevoked(s.inflight.revoke)
	}
	if cfg.Audit {
		s.audit = newAuditor(s, s.reg)
		if ta, ok := s.auth.(*TokenAuth); ok {
			ta.watch(s.audit.auditTokens)
		}
	}
	if cfg.MetricsAuth {
		s.metricsNeed = roleMetrics
	}
	s.routes = s.routeTable()
	s.mux = http.NewServeMux()
	for _, rt := range s.routes {
		s.mux.Handle(rt.method+" "+rt.path, s.instrument(rt, s.authenticate(rt, rt.handler)))
	}
	s.mountConsole()
	s.handler = http.HandlerFunc(s.serveHTTP)
	return s
}

// limitsOf fills the zero fields of l from agenttrail.DefaultLimits.
func limitsOf(l agenttrail.Limits) agenttrail.Limits {
	d := agenttrail.DefaultLimits
	defaults.Positive(&l.MaxEventBytes, d.MaxEventBytes)
	defaults.Positive(&l.MaxRequestBytes, d.MaxRequestBytes)
	defaults.Positive(&l.MaxBatchEvents, d.MaxBatchEvents)
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

// Open binds the listener, so a bad or busy address fails here. Serve
// then serves on it.
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
	s.srv = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	return nil
}

// Serve serves the API on the listener Open bound until Shutdown, and
// returns nil then; any other return is the error that stopped it, and a
// process should stop with it.
func (s *Server) Serve() error {
	s.mu.Lock()
	srv, ln := s.srv, s.ln
	s.mu.Unlock()
	if srv == nil {
		return errors.New("server: Serve before Open")
	}
	s.log.Info("serving HTTP", "addr", ln.Addr().String())
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// Shutdown stops accepting connections, ends open streams, and waits, until
// ctx ends, for the requests in flight to be answered; then it closes what
// is left and returns ctx's error. It may be called before Serve, and more
// than once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	srv, ln := s.srv, s.ln
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	err := srv.Shutdown(ctx)
	if err != nil {
		_ = srv.Close()
	}
	_ = ln.Close() // Shutdown closes it only when Serve ran
	return err
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
