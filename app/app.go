// Package app is the one assembly of a running agenttrail server: it opens
// the store, the server's spool, the write path, tokens, redaction and the
// first-start files of a data directory, and runs every long-lived part as
// an actor of one run.Group. `agenttrail serve`, `agenttrail bench`,
// servertest and the end-to-end tests all run a server through it, so what
// is measured and tested is what users run.
package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/cluster"
	"github.com/agenttrail/agenttrail/ingest"
	"github.com/agenttrail/agenttrail/integrity"
	"github.com/agenttrail/agenttrail/internal/private"
	"github.com/agenttrail/agenttrail/postgres"
	"github.com/agenttrail/agenttrail/redact"
	"github.com/agenttrail/agenttrail/server"
	"github.com/agenttrail/agenttrail/sink"
	"github.com/agenttrail/agenttrail/sqlite"
)

// RetentionRule keeps the events it matches for Keep. Source, Org and
// Project match as the API's filters do: any of the values of one, all of
// those given.
type RetentionRule struct {
	Source, Org, Project []string
	Keep                 time.Duration
}

func (r RetentionRule) filter() agenttrail.Filter {
	return agenttrail.Filter{Source: r.Source, Org: r.Org, Project: r.Project}
}

// String says what the rule matches and keeps, as the configuration file
// does: "source=llm-proxy keep=2160h0m0s".
func (r RetentionRule) String() string {
	var b strings.Builder
	for _, f := range []struct {
		name string
		vals []string
	}{{"source", r.Source}, {"org", r.Org}, {"project", r.Project}} {
		if len(f.vals) > 0 {
			fmt.Fprintf(&b, "%s=%s ", f.name, strings.Join(f.vals, ","))
		}
	}
	return b.String() + "keep=" + r.Keep.String()
}

// Check reports what is wrong with cfg without opening anything: the
// checks Open makes before it touches the data directory, the TLS files
// included.
func Check(cfg Config) error {
	if cfg.DataDir == "" {
		return errors.New("app: no data directory")
	}
	if cfg.Addr == "" {
		cfg.Addr = server.DefaultAddr
	}
	if _, err := loadTLS(cfg); err != nil {
		return err
	}
	if _, err := redact.New(cfg.RedactPatterns...); err != nil {
		return fmt.Errorf("redaction patterns (--redact): %w", err)
	}
	if _, err := metricsAuthOf(cfg.MetricsAuth, cfg.Addr); err != nil {
		return err
	}
	switch storeKind(cfg.Store) {
	case "sqlite", "postgres", "postgresql":
	default:
		return fmt.Errorf("--store: unknown store %q (want sqlite or a postgres:// URL)", cfg.Store)
	}
	if err := sink.Check(cfg.Sinks); err != nil {
		return err
	}
	if err := checkRole(cfg); err != nil {
		return err
	}
	rules := make([]agenttrail.RetentionRule, 0, len(cfg.RetentionRules)+1)
	for i, r := range cfg.RetentionRules {
		if r.Keep <= 0 {
			return fmt.Errorf("retention rule %d: keep must be positive", i+1)
		}
		rules = append(rules, agenttrail.RetentionRule{Filter: r.filter()})
	}
	if err := agenttrail.CheckRetentionRules(append(rules, agenttrail.RetentionRule{})); err != nil {
		return fmt.Errorf("retention rules: %w", err)
	}
	return nil
}

// Config is what a server is made of. DataDir is required; the zero value
// of every other field is the server `agenttrail serve` runs without flags.
type Config struct {
	// Addr is the listen address; "" means server.DefaultAddr. A
	// non-loopback address needs TLS or AllowPlaintext.
	Addr string
	// DataDir holds the embedded store, the spool, the tokens, the first
	// admin token and the cursor key (see the file names below).
	DataDir string
	// Store is "" or "sqlite" for the embedded store in DataDir, or a
	// postgres:// URL.
	Store string
	// Retain deletes events older than this, at start and then hourly; 0
	// keeps everything.
	Retain time.Duration
	// SpoolMaxBytes bounds the spool that takes ingest while the store is
	// unavailable; past it ingest answers 503. 0 means
	// ingest.DefaultSpoolMaxBytes.
	SpoolMaxBytes int64

	// TLSCert and TLSKey are PEM files to serve HTTPS with.
	TLSCert, TLSKey string
	// AllowPlaintext allows a non-loopback Addr without TLS, for a server
	// behind a TLS-terminating proxy.
	AllowPlaintext bool
	// RedactPatterns are applied to every event after the built-in rules
	// and the rule for agenttrail tokens.
	RedactPatterns []redact.Pattern
	// RateLimit bounds each token's requests; the zero value is no limit.
	RateLimit server.RateLimit
	// AnonymousRateLimit bounds, per client address, the requests without
	// a valid token (open routes, failed authentication); the zero value
	// is no limit.
	AnonymousRateLimit server.RateLimit
	// MetricsAuth is "auto" or "" (a token for /metrics unless Addr is
	// loopback), "on" or "off".
	MetricsAuth string
	// MaxBodyBytes bounds the bytes all ingest request bodies in flight
	// may hold at once (server.Config.MaxBodyBytes); 0 is the default.
	MaxBodyBytes int64
	// SigningKey is the file of the Ed25519 key that signs checkpoints
	// (integrity); "" means SigningKeyFile in DataDir, created on first
	// start. A file given here must exist.
	SigningKey string
	// CheckpointEvery and CheckpointInterval say when each org's tree gets
	// a new signed checkpoint: after this many new events, or this long
	// after its first unsigned one, whichever comes first; 0 means 10,000
	// and 10 s.
	CheckpointEvery    int64
	CheckpointInterval time.Duration
	// CheckpointDir, when set, receives a copy of every checkpoint signed,
	// one file each (<dir>/<org>/<size>.checkpoint).
	CheckpointDir string

	// Ingest tunes the write path (queue, batch size, linger, and the naive
	// one-transaction-per-event baseline of agenttrail bench). Its
	// Redactor, Now, Logger and Registerer are the assembly's own.
	Ingest ingest.Config

	// Sinks are the destinations the trail is delivered to (package sink);
	// each must have passed sink.Check.
	Sinks []sink.Config
	// RetentionRules keep the events they match for their own period: the
	// first rule that matches an event decides, else Retain.
	RetentionRules []RetentionRule

	// Role is this node's part in a cluster (RoleAll, RoleIngest,
	// RoleWriter, RoleQuery); "" is RoleAll. Every role but RoleAll needs
	// NATS.
	Role string
	// NATS, when its URL is set, puts a JetStream stream between ingest
	// and the store (package cluster): ingest publishes to it and a writer
	// commits from it. Without it the server is one process.
	NATS cluster.Config

	// Logger logs the server's life; nil discards.
	Logger *slog.Logger
	// Registry is served on /metrics and every part's metrics are
	// registered on it; nil means a new one with the Go and process
	// collectors.
	Registry *prometheus.Registry
}

// The files of a data directory.
const (
	StoreFile  = "agenttrail.db" // the embedded store
	SpoolDir   = "spool"         // the server's spool
	TokensFile = "tokens.json"   // the token store
	// TokensInStoreFile marks the data directory of a cluster node, whose
	// tokens live in the store, so the commands that manage tokens in a
	// data directory refuse it instead of changing a file no node reads.
	TokensInStoreFile = "tokens-in-store.txt"
	AdminTokenFile    = "admin.token" // the first admin token, written on first start
	CursorKeyFile     = "cursor.key"  // the key that signs cursors
	SigningKeyFile    = "signing.key" // the key that signs checkpoints, written on first start
)

// The rate limit of `agenttrail serve` without flags, per token: far above
// what an SDK sends (it batches), far below what a runaway or stolen token
// could.
const (
	DefaultRate  = 1000 // requests a second
	DefaultBurst = 2000 // requests at once

	// Per client address, for requests without a valid token: above
	// health probes and a console signing in, far below a token-guessing
	// or flooding client.
	DefaultAnonymousRate  = 20  // requests a second
	DefaultAnonymousBurst = 100 // requests at once
)

// shutdownTimeout bounds how long the HTTP server waits, on the way out,
// for requests in flight (an ingest waits for its commit).
const shutdownTimeout = 25 * time.Second

// Main is an opened server: Open has bound its listener and opened its
// store; Run runs it until its context ends. Its methods are safe for
// concurrent use.
type Main struct {
	cfg      Config
	log      *slog.Logger
	reg      *prometheus.Registry
	store    agenttrail.Store
	spool    *ingest.Spool
	pipeline *ingest.Pipeline
	srv      *server.Server
	auth     *server.TokenAuth
	ret      *retention // nil without Config.Retain and RetentionRules
	role     string
	nats     *cluster.Conn     // nil without Config.NATS
	writer   *cluster.Writer   // the stream's writer, on a node that commits with NATS
	commit   *ingest.Pipeline  // the writer's pipeline into the store, when it is not pipeline
	sinks    *sink.Set         // nil without Config.Sinks
	signer   *integrity.Signer // nil on an ingest node, which has no store
	tokens   *server.TokenFile // the data directory's, or on a cluster the store's
	shared   *postgres.Shared  // the state a cluster's nodes share; nil without NATS
	// ownShared is set when shared has connections of its own (an ingest
	// node's), which Close closes.
	ownShared bool
	// singleRetention, singleSigner and singleSinks run, on a cluster, the
	// work one node does at a time: retention, the periodic checkpoints,
	// the sinks. nil on a single server.
	singleRetention, singleSigner, singleSinks *cluster.Exclusive
	signIn                                     string // a one-time console link when Open created the admin token

	closeOnce sync.Once
	closeErr  error
}

// Open opens everything a server needs, in dependency order, and binds its
// listener, so a bad flag, a busy address or an unreachable store fails
// here; on failure it closes what it opened. Call Run to serve, or Close
// to give up.
func Open(ctx context.Context, cfg Config) (_ *Main, err error) {
	if cfg.DataDir == "" {
		return nil, errors.New("app: no data directory")
	}
	if cfg.Addr == "" {
		cfg.Addr = server.DefaultAddr
	}
	if err := Check(cfg); err != nil {
		return nil, err
	}
	m := &Main{cfg: cfg, log: cfg.Logger, reg: cfg.Registry}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if m.reg == nil {
		m.reg = prometheus.NewRegistry()
		m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	defer func() {
		if err != nil {
			m.Close()
		}
	}()
	if err := private.MkdirAll(cfg.DataDir); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	tlsCfg, err := loadTLS(cfg)
	if err != nil {
		return nil, err
	}
	redactor, err := redact.New(append(append([]redact.Pattern(nil), cfg.RedactPatterns...), server.TokenPattern)...)
	if err != nil {
		return nil, fmt.Errorf("redaction patterns (--redact): %w", err)
	}
	m.role = roleOf(cfg)
	clustered := cfg.NATS.URL != ""
	if m.role != RoleIngest {
		if m.store, err = openStore(ctx, cfg, m.log, m.reg); err != nil {
			return nil, err
		}
	}
	// On a cluster the tokens and keys live in the store, shared by every
	// node; an ingest node, which has no store, opens its shared state
	// alone.
	if clustered {
		if pg, ok := m.store.(*postgres.Store); ok {
			m.shared = pg.Shared()
		} else {
			if m.shared, err = postgres.OpenShared(ctx, cfg.Store, m.log); err != nil {
				return nil, err
			}
			m.ownShared = true
		}
	}
	m.tokens = server.NewTokenFile(filepath.Join(cfg.DataDir, TokensFile))
	if m.shared != nil {
		m.tokens = sharedTokensOf(m.shared)
	}
	if err := markTokensInStore(cfg.DataDir, m.shared != nil); err != nil {
		return nil, err
	}
	auth, createdAdmin, err := openTokens(m.tokens, cfg.DataDir, m.log)
	if err != nil {
		return nil, err
	}
	m.auth = auth
	cursorKey, err := m.cursorKey(ctx)
	if err != nil {
		return nil, err
	}
	if clustered {
		ncfg := cfg.NATS
		ncfg.Logger = m.log
		if ncfg.Name == "" {
			ncfg.Name = "agenttrail " + m.role
		}
		cctx, cancel := context.WithTimeout(ctx, natsConnectTimeout)
		m.nats, err = cluster.Connect(cctx, ncfg)
		if err == nil {
			err = m.nats.EnsureStream(cctx)
		}
		cancel()
		if err != nil {
			return nil, err
		}
	}
	icfg := cfg.Ingest
	icfg.Redactor, icfg.Now, icfg.Logger, icfg.Registerer = redactor, time.Now, m.log, m.reg
	// Where accepted events go: the store, or with NATS the stream (a
	// writer role's own audit goes to its store directly).
	var target agenttrail.Appender = m.store
	if clustered && m.role != RoleWriter {
		target = cluster.NewPublisher(m.nats)
	}
	if !clustered || m.role != RoleWriter {
		// The spool takes what the store (or the stream) cannot while it
		// is down; its Run puts it back, in order, when it returns.
		m.spool, err = ingest.OpenSpool(target, ingest.SpoolConfig{
			Dir: filepath.Join(cfg.DataDir, SpoolDir), MaxBytes: cfg.SpoolMaxBytes, Logger: m.log, Registerer: m.reg,
		})
		if err != nil {
			return nil, err
		}
		target = m.spool
	}
	// Into PostgreSQL, two batches commit at once: one COPYs while the
	// other waits for its commit to be flushed (postgres.Store.Append).
	wcfg := icfg
	if _, ok := m.store.(*postgres.Store); ok && wcfg.Writers == 0 {
		wcfg.Writers = 2
	}
	if !clustered || m.role == RoleWriter {
		icfg = wcfg
	}
	m.pipeline = ingest.New(target, icfg)
	if clustered && commits(m.role) {
		m.commit = m.pipeline
		if m.role == RoleAll {
			// A second pipeline, into the store; the first one's
			// metrics are the node's.
			wcfg.Registerer = nil
			m.commit = ingest.New(m.store, wcfg)
		}
		m.writer = cluster.NewWriter(m.nats, m.commit, cluster.NewPGLock(cfg.Store), cluster.WriterConfig{Logger: m.log})
	}
	if clustered {
		m.reg.MustRegister(cluster.NewCollector(m.nats, m.writer))
		if m.store != nil {
			m.singleSigner = &cluster.Exclusive{Lock: cluster.NewPGLockNamed(cfg.Store, "checkpoints"), What: "periodic checkpoints", Log: m.log}
			m.singleSinks = &cluster.Exclusive{Lock: cluster.NewPGLockNamed(cfg.Store, "sinks"), What: "sinks", Log: m.log}
		}
	}
	metricsAuth, err := metricsAuthOf(cfg.MetricsAuth, cfg.Addr)
	if err != nil {
		return nil, err
	}
	var sinks server.Sinks
	if len(cfg.Sinks) > 0 {
		st, ok := m.store.(sink.Store)
		if !ok {
			return nil, fmt.Errorf("sinks: the %s store keeps no checkpoints", storeKind(cfg.Store))
		}
		if m.sinks, err = sink.New(cfg.Sinks, st, m.log, m.reg); err != nil {
			return nil, err
		}
		sinks = m.sinks
		if m.singleSinks != nil {
			sinks = clusterSinks{m.sinks, m.singleSinks}
		}
	}
	var integ *server.Integrity
	if m.store != nil {
		if integ, err = m.openIntegrity(ctx, cfg); err != nil {
			return nil, err
		}
	}
	var reader server.Reader = m.store
	if m.store == nil {
		reader = noReads{m.nats}
	}
	var spool server.Degrader
	if m.spool != nil {
		spool = m.spool
	}
	noIngest := ""
	if clustered && (m.role == RoleWriter || m.role == RoleQuery) {
		noIngest = fmt.Sprintf("this node (--role %s) does not ingest; send events to an ingest node", m.role)
	}
	var clusterRep server.ClusterReporter
	if clustered {
		clusterRep = clusterReport{m}
	}
	m.srv = server.New(server.Config{
		Cluster:            clusterRep,
		Integrity:          integ,
		Sinks:              sinks,
		Addr:               cfg.Addr,
		Store:              reader,
		Ingest:             m.pipeline,
		Spool:              spool,
		NoIngest:           noIngest,
		Logger:             m.log,
		Registry:           m.reg,
		Auth:               m.auth,
		Audit:              true,
		RateLimit:          cfg.RateLimit,
		AnonymousRateLimit: cfg.AnonymousRateLimit,
		MetricsAuth:        metricsAuth,
		TLS:                tlsCfg,
		// The bodies being read are bounded server-wide, so clients that
		// declare large bodies and send slowly cost at most this.
		MaxBodyBytes: cfg.MaxBodyBytes,
		CursorKey:    cursorKey,
	})
	// Retention deletes from the store: on a cluster, where the stream is
	// committed (writer nodes), not on every query node.
	if (cfg.Retain > 0 || len(cfg.RetentionRules) > 0) && (!clustered || commits(m.role)) {
		m.ret = &retention{store: m.store, reader: m.store, writer: m.pipeline, horizon: cfg.Retain, rules: cfg.RetentionRules,
			interval: time.Hour, logger: m.log, now: time.Now}
		if m.sinks != nil {
			m.ret.required = m.sinks.LowestRequired
			m.ret.held = prometheus.NewGauge(prometheus.GaugeOpts{Name: "agenttrail_retention_held_by_sinks",
				Help: "1 while retention keeps events past its horizon because a required sink has not delivered them."})
			m.reg.MustRegister(m.ret.held)
		}
		// On a cluster every writer node is configured for retention, and
		// one of them runs it, the one holding its lock: two runs at once
		// would race for the same rows and record the trail's forgetting
		// twice.
		if clustered {
			m.singleRetention = &cluster.Exclusive{Lock: cluster.NewPGLockNamed(cfg.Store, "retention"), What: "retention", Log: m.log}
		}
	}
	if err := m.srv.Open(); err != nil {
		return nil, err
	}
	m.log.Info("agenttrail serving", "url", m.srv.URL(), "role", m.role, "nats", cfg.NATS.URL != "", "store", storeKind(cfg.Store), "data", cfg.DataDir)
	if createdAdmin {
		// Whoever started a fresh server gets into its console with one
		// click; the link works once, for ten minutes.
		if m.signIn, err = SignInURLFrom(m.srv.URL(), m.tokens, server.RoleAdmin, server.AllOrgs, ""); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Run serves until ctx ends or a part fails, and returns that part's error
// (nil when ctx ended). Every long-lived part is an actor of one run.Group,
// which interrupts them one after another in the order they are added
// below, so that order is the order of shutdown: the HTTP server stops
// taking requests and answers those in flight; the audit writer records
// the last reads; retention stops; the sinks save their checkpoints; the writer commits everything queued;
// the spool's replay stops. Then the spool and the store are closed. Run
// is called once; Main is closed when it returns.
func (m *Main) Run(ctx context.Context) error {
	defer m.Close()
	var g run.Group
	{
		ctx, cancel := context.WithCancel(ctx)
		g.Add(func() error {
			<-ctx.Done()
			return nil
		}, func(error) { cancel() })
	}
	g.Add(m.srv.Serve, func(error) {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		if err := m.srv.Shutdown(ctx); err != nil {
			m.log.Error("http shutdown", "err", err)
		}
	})
	// Watches the token file, so a revocation ends the token's requests
	// in progress even while no new request comes to notice it.
	addActor(&g, m.auth.Run)
	addActor(&g, m.srv.RunAudit)
	// Retention, the periodic checkpoints, and the sinks: each sink follows
	// the store on its own, so a receiver that is down slows nothing else.
	// They stop before the writer, and the sinks save their checkpoints on
	// the way out. On a cluster each runs on one node at a time, the one
	// holding its lock, so a run of retention deletes and is recorded once
	// and each receiver gets the trail once; any node with a store signs on
	// demand.
	var retention, sinks []func(context.Context) error
	if m.ret != nil {
		retention = append(retention, m.ret.run)
	}
	if m.sinks != nil {
		for _, r := range m.sinks.Runners() {
			sinks = append(sinks, r.Run)
		}
	}
	for _, group := range []struct {
		runs   []func(context.Context) error
		single *cluster.Exclusive
	}{{retention, m.singleRetention}, {m.signerRuns(), m.singleSigner}, {sinks, m.singleSinks}} {
		if group.single == nil {
			for _, run := range group.runs {
				addActor(&g, run)
			}
		} else if len(group.runs) > 0 {
			addActor(&g, func(ctx context.Context) error {
				return group.single.Run(ctx, cluster.WhileHeld(group.single.Poll, runAll(group.runs)))
			})
		}
	}
	// The stream's writer stops before the pipeline it commits through,
	// so the batch it is committing completes and is acknowledged.
	if m.writer != nil {
		addActor(&g, m.writer.Run)
	}
	addActor(&g, m.pipeline.Run)
	if m.commit != nil && m.commit != m.pipeline {
		addActor(&g, m.commit.Run)
	}
	if m.spool != nil {
		addActor(&g, m.spool.Run)
	}
	err := g.Run()
	m.log.Info("agenttrail stopped", "err", err)
	return err
}

// signerRuns is the periodic signing of checkpoints, when this node signs.
func (m *Main) signerRuns() []func(context.Context) error {
	if m.signer == nil {
		return nil
	}
	return []func(context.Context) error{m.signer.Run}
}

// runAll runs every one of runs until all have returned, and returns the
// first error.
func runAll(runs []func(context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error {
		errs := make(chan error, len(runs))
		for _, run := range runs {
			go func() { errs <- run(ctx) }()
		}
		var first error
		for range runs {
			if err := <-errs; err != nil && first == nil {
				first = err
			}
		}
		return first
	}
}

// addActor adds run to g as an actor with a context of its own. Its
// interrupt cancels that context and waits for run to return, so the actors
// added after it are interrupted only once it has stopped.
func addActor(g *run.Group, run func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	g.Add(func() error {
		defer close(done)
		return run(ctx)
	}, func(error) {
		cancel()
		<-done
	})
}

// Close releases what Open opened: the listener, the spool and the store.
// Run calls it on its way out; call it only for a Main that is not run. It
// is safe to call more than once.
func (m *Main) Close() error {
	m.closeOnce.Do(func() {
		var errs []error
		if m.srv != nil {
			errs = append(errs, m.srv.Shutdown(context.Background()))
		}
		if m.spool != nil {
			errs = append(errs, m.spool.Close())
		}
		if m.store != nil {
			errs = append(errs, m.store.Close())
		}
		if m.nats != nil {
			m.nats.Close()
		}
		if m.shared != nil && m.ownShared {
			m.shared.Close()
		}
		m.closeErr = errors.Join(errs...)
	})
	return m.closeErr
}

// URL returns the base URL the server listens on, such as
// "http://127.0.0.1:7311".
func (m *Main) URL() string { return m.srv.URL() }

// SignInURL returns the one-time console sign-in link Open made when it
// created the first admin token, or "" when it did not.
func (m *Main) SignInURL() string { return m.signIn }

// Store returns the store, for tests and tools that read it directly.
func (m *Main) Store() agenttrail.Store { return m.store }

// Registry returns the registry served on /metrics.
func (m *Main) Registry() *prometheus.Registry { return m.reg }

// storeKind names the store of a Config.Store: "sqlite", or the scheme of
// a URL.
func storeKind(store string) string {
	if store == "" {
		return "sqlite"
	}
	if i := strings.Index(store, "://"); i > 0 {
		return store[:i]
	}
	return store
}

func openStore(ctx context.Context, cfg Config, logger *slog.Logger, reg prometheus.Registerer) (agenttrail.Store, error) {
	switch storeKind(cfg.Store) {
	case "sqlite":
		return sqlite.Open(ctx, filepath.Join(cfg.DataDir, StoreFile), sqlite.Config{Logger: logger, Registerer: reg})
	case "postgres", "postgresql":
		return postgres.Open(ctx, cfg.Store, postgres.Config{Logger: logger, Registerer: reg})
	default:
		return nil, fmt.Errorf("--store: unknown store %q (want sqlite or a postgres:// URL)", cfg.Store)
	}
}

// openIntegrity loads the signing key (creating the data directory's on
// first start) and makes the checkpoint signer.
func (m *Main) openIntegrity(ctx context.Context, cfg Config) (*server.Integrity, error) {
	log, ok := m.store.(integrity.Log)
	if !ok {
		return nil, fmt.Errorf("store %T keeps no integrity log", m.store)
	}
	key, err := m.signingKey(ctx, cfg)
	if err != nil {
		return nil, err
	}
	m.signer = &integrity.Signer{Log: log, Key: key, Every: cfg.CheckpointEvery, Interval: cfg.CheckpointInterval,
		Dir: cfg.CheckpointDir, Logger: m.log, Events: m.store,
		// Each checkpoint is an audit event of its org too, through the
		// one write path, so every delivery sink carries it away.
		Record: func(ctx context.Context, e agenttrail.Event) error {
			res, err := m.pipeline.Write(ctx, []agenttrail.Event{e}, ingest.Scope{Server: true})
			if err == nil && len(res.Rejected) > 0 {
				err = res.Rejected[0].Err
			}
			return err
		}}
	return &server.Integrity{Log: log, Signer: m.signer, Key: key.VerifierKey()}, nil
}

// loadTLS checks the transport settings and loads the certificate.
func loadTLS(cfg Config) (*tls.Config, error) {
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		return nil, errors.New("the TLS certificate and key (--tls-cert, --tls-key) go together")
	}
	if cfg.RateLimit.Rate < 0 || cfg.RateLimit.Burst < 0 || cfg.AnonymousRateLimit.Rate < 0 || cfg.AnonymousRateLimit.Burst < 0 {
		return nil, errors.New("the rate limit and its burst (--rate-limit, --rate-burst) must not be negative")
	}
	if cfg.TLSCert == "" {
		if !loopbackAddr(cfg.Addr) && !cfg.AllowPlaintext {
			return nil, fmt.Errorf("the address %s is reachable from other hosts: serve it with TLS (--tls-cert, --tls-key), or allow plaintext (--allow-plaintext) when a TLS proxy fronts it", cfg.Addr)
		}
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("TLS certificate (--tls-cert, --tls-key): %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// metricsAuthOf reports whether /metrics needs a token: mode "on", or
// "auto" (or "") on an address other hosts can reach.
func metricsAuthOf(mode, addr string) (bool, error) {
	switch mode {
	case "", "auto":
		return !loopbackAddr(addr), nil
	case "on":
		return true, nil
	case "off":
		return false, nil
	}
	return false, fmt.Errorf("--metrics-auth: want auto, on or off, not %q", mode)
}
