package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/ingest"
	"github.com/agenttrail/agenttrail/postgres"
	"github.com/agenttrail/agenttrail/redact"
	"github.com/agenttrail/agenttrail/server"
	"github.com/agenttrail/agenttrail/sqlite"
	"github.com/agenttrail/agenttrail/wire"
)

// Main is the server process: the store, the ingest pipeline and the HTTP
// API, run as actors of one run.Group. End-to-end tests reuse it. Its zero
// value is not usable; set the fields (ParseFlags does) and call Run.
type Main struct {
	Addr    string        // listen address
	DataDir string        // embedded store, spool and token files
	Store   string        // "" or "sqlite" for the embedded store, or a postgres:// URL
	Retain  time.Duration // delete events older than this; 0 keeps everything

	// SpoolMaxBytes bounds the spool in <data>/spool that takes ingest
	// while the store is unavailable; past it ingest answers 503.
	SpoolMaxBytes int64

	// Transport, tokens, redaction and rate limits: see securityFlags.
	TLSCert, TLSKey string
	AllowPlaintext  bool
	RedactFile      string
	RateLimit       server.RateLimit

	Logger *slog.Logger

	// ready, when set, receives the server's URL once it listens.
	ready func(url string)
}

// ParseFlags reads the serve flags.
func (m *Main) ParseFlags(args []string, env *Env) error {
	fs := newFlagSet("serve", env)
	fs.StringVar(&m.Addr, "addr", "127.0.0.1:7311", "listen address")
	fs.StringVar(&m.DataDir, "data", "./agenttrail-data", "data directory (embedded store, spool)")
	fs.StringVar(&m.Store, "store", "sqlite", "store: sqlite (embedded, in --data) or postgres://user@host:port/db")
	retain := fs.String("retain", "", "delete events older than this (e.g. 400d); default: keep everything")
	fs.Int64Var(&m.SpoolMaxBytes, "spool-max-bytes", ingest.DefaultSpoolMaxBytes, "bound of the spool in <data>/spool that keeps ingest going while the store is down; past it ingest answers 503")
	m.securityFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if *retain != "" {
		d, err := wire.ParseDuration(*retain)
		if err != nil {
			fmt.Fprintf(env.Stderr, "--retain: %v\n", err)
			return errUsage
		}
		m.Retain = d
	}
	return nil
}

// Run opens the store, starts the writer and the HTTP server, and serves
// until ctx is cancelled or an actor fails. On the way out it stops taking
// requests, lets the writer commit everything queued, and closes the store.
func (m *Main) Run(ctx context.Context) error {
	logger := m.Logger
	if logger == nil {
		logger = slog.Default()
	}
	if err := os.MkdirAll(m.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	sec, err := m.security(logger)
	if err != nil {
		return err
	}
	store, err := m.openStore(ctx, logger)
	if err != nil {
		return err
	}
	defer func() {
		if err := store.Close(); err != nil {
			logger.Error("close store", "err", err)
		}
	}()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// The spool takes what the store cannot while it is down, and the
	// replay actor below puts it back, in order, when the store returns.
	spool, err := ingest.OpenSpool(store, ingest.SpoolConfig{Dir: filepath.Join(m.DataDir, "spool"), MaxBytes: m.SpoolMaxBytes}, logger, reg)
	if err != nil {
		return err
	}
	defer func() {
		if err := spool.Close(); err != nil {
			logger.Error("close spool", "err", err)
		}
	}()
	pipeline := ingest.New(spool, ingest.Config{}, logger, reg)
	cursorKey, err := server.LoadCursorKey(filepath.Join(m.DataDir, "cursor.key"))
	if err != nil {
		return err
	}
	srv := server.New(server.Config{
		CursorKey: cursorKey,
		Addr:      m.Addr,
		Store:     store,
		Ingest:    pipeline,
		Spool:     spool,
		Logger:    logger,
		Registry:  reg,
		Auth:      sec.auth,
		Audit:     true,
		Redactor:  sec.redactor,
		RateLimit: m.RateLimit,
		TLS:       sec.tls,
	})
	if err := srv.Open(); err != nil {
		return err
	}
	logger.Info("agenttrail serving", "url", srv.URL(), "store", m.storeName(), "data", m.DataDir)
	if m.ready != nil {
		m.ready(srv.URL())
	}

	var g run.Group
	{
		// The writer outlives the HTTP server: requests still in flight
		// when shutdown starts are committed and answered before it stops.
		writerCtx, stopWriter := context.WithCancel(context.Background())
		httpDone := make(chan struct{})
		g.Add(func() error {
			err := pipeline.Run(writerCtx)
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		}, func(error) {
			go func() {
				select {
				case <-httpDone:
				case <-time.After(30 * time.Second):
				}
				stopWriter()
			}()
		})
		serveCtx, stopServing := context.WithCancel(ctx)
		g.Add(func() error {
			<-serveCtx.Done()
			return nil
		}, func(error) {
			stopServing()
			shutdownCtx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
			defer cancel()
			if err := srv.Close(shutdownCtx); err != nil {
				logger.Error("http shutdown", "err", err)
			}
			close(httpDone)
		})
	}
	{
		replayCtx, stopReplay := context.WithCancel(context.Background())
		g.Add(func() error { return spool.Run(replayCtx) }, func(error) { stopReplay() })
	}
	if m.Retain > 0 {
		ret := &retention{store: store, submit: pipeline.Submit, horizon: m.Retain, interval: time.Hour, logger: logger, now: time.Now}
		retCtx, stopRetention := context.WithCancel(context.Background())
		g.Add(func() error { return ret.run(retCtx) }, func(error) { stopRetention() })
	}
	err = g.Run()
	logger.Info("agenttrail stopped")
	return err
}

func (m *Main) storeName() string {
	if m.Store == "" {
		return "sqlite"
	}
	if i := strings.Index(m.Store, "://"); i > 0 {
		return m.Store[:i]
	}
	return m.Store
}

func (m *Main) openStore(ctx context.Context, logger *slog.Logger) (agenttrail.Store, error) {
	switch m.storeName() {
	case "sqlite":
		return sqlite.Open(ctx, filepath.Join(m.DataDir, "agenttrail.db"), logger)
	case "postgres", "postgresql":
		return postgres.Open(ctx, m.Store, logger)
	default:
		return nil, fmt.Errorf("--store: unknown store %q (want sqlite or a postgres:// URL)", m.Store)
	}
}

// securityFlags registers the flags of the server's transport, redaction
// and rate limit. Tokens need no flag: they live in <data>/tokens.json.
func (m *Main) securityFlags(fs *flag.FlagSet) {
	fs.StringVar(&m.TLSCert, "tls-cert", "", "PEM certificate (chain) to serve HTTPS with; needs --tls-key")
	fs.StringVar(&m.TLSKey, "tls-key", "", "PEM private key of --tls-cert")
	fs.BoolVar(&m.AllowPlaintext, "allow-plaintext", false, "allow a non-loopback --addr without TLS (behind a TLS-terminating proxy)")
	fs.StringVar(&m.RedactFile, "redact", "", `JSON file of extra redaction patterns applied to every event before it is stored: [{"kind": "...", "regexp": "..."}]`)
	fs.Float64Var(&m.RateLimit.Rate, "rate-limit", 1000, "requests per second each token may make on average; 0 for no limit")
	fs.IntVar(&m.RateLimit.Burst, "rate-burst", 2000, "requests a token may make at once above --rate-limit")
}

// security is what Run wires into the server from the security flags.
type security struct {
	auth     *server.TokenAuth
	redactor *redact.Redactor
	tls      *tls.Config
}

// security checks the transport flags, loads the TLS certificate, the
// redaction patterns and the tokens, and on first start creates an admin
// token in <data>/admin.token.
func (m *Main) security(logger *slog.Logger) (security, error) {
	var sec security
	if (m.TLSCert == "") != (m.TLSKey == "") {
		return sec, errors.New("--tls-cert and --tls-key go together")
	}
	if m.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(m.TLSCert, m.TLSKey)
		if err != nil {
			return sec, fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		sec.tls = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	} else if !loopbackAddr(m.Addr) && !m.AllowPlaintext {
		return sec, fmt.Errorf("--addr %s is reachable from other hosts: serve it with --tls-cert and --tls-key, or pass --allow-plaintext when a TLS proxy fronts it", m.Addr)
	}
	if m.RateLimit.Rate < 0 || m.RateLimit.Burst < 0 {
		return sec, errors.New("--rate-limit and --rate-burst must not be negative")
	}

	var patterns []redact.Pattern
	if m.RedactFile != "" {
		b, err := os.ReadFile(m.RedactFile)
		if err != nil {
			return sec, fmt.Errorf("--redact: %w", err)
		}
		if err := json.Unmarshal(b, &patterns); err != nil {
			return sec, fmt.Errorf("--redact: %s: %w", m.RedactFile, err)
		}
	}
	redactor, err := redact.New(append(patterns, server.TokenPattern)...)
	if err != nil {
		return sec, fmt.Errorf("--redact: %w", err)
	}
	sec.redactor = redactor

	file := server.NewTokenFile(filepath.Join(m.DataDir, tokensFile))
	if err := ensureAdminToken(file, m.DataDir, logger); err != nil {
		return sec, err
	}
	if sec.auth, err = server.NewTokenAuth(file, logger); err != nil {
		return sec, err
	}
	return sec, nil
}

// adminTokenFile is where serve leaves the first admin token, and where the
// client commands look for a token when talking to a local server.
const adminTokenFile = "admin.token"

// ensureAdminToken creates an admin token for every org when the store has
// no live token, so a fresh server is usable and never open. The token goes
// to <data>/admin.token (mode 0600); the log says where, not what.
func ensureAdminToken(file *server.TokenFile, data string, logger *slog.Logger) error {
	recs, err := file.List()
	if err != nil {
		return err
	}
	for _, t := range recs {
		if !t.Revoked() {
			return nil
		}
	}
	name := "admin"
	for _, t := range recs {
		if t.Name == name {
			name = "admin-" + time.Now().UTC().Format("20060102150405")
		}
	}
	token, _, err := file.Create(name, server.RoleAdmin, server.AllOrgs, "", time.Now())
	if err != nil {
		return fmt.Errorf("create the first admin token: %w", err)
	}
	path := filepath.Join(data, adminTokenFile)
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		return fmt.Errorf("write the first admin token: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil { // WriteFile keeps an existing file's mode
		return fmt.Errorf("write the first admin token: %w", err)
	}
	logger.Info("created an admin token for every org; local commands use it, others need it as AGENTTRAIL_TOKEN", "path", path, "name", name)
	return nil
}

// loopbackAddr reports whether a listen address is reachable only from this
// host: a loopback IP or localhost. An empty host listens everywhere.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func runServe(ctx context.Context, args []string, env *Env) error {
	m := &Main{Logger: slog.New(slog.NewTextHandler(env.Stderr, nil))}
	if err := m.ParseFlags(args, env); err != nil {
		return err
	}
	return m.Run(ctx)
}
