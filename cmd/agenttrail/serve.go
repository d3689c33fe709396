package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
	"github.com/agenttrail/agenttrail/server"
	"github.com/agenttrail/agenttrail/sqlite"
)

// Main is the server process: the store, the ingest pipeline and the HTTP
// API, run as actors of one run.Group. End-to-end tests reuse it. Its zero
// value is not usable; set the fields (ParseFlags does) and call Run.
type Main struct {
	Addr    string // listen address
	DataDir string // embedded store, spool and token files
	Store   string // "" or "sqlite" for the embedded store, or a postgres:// URL
	Retain  time.Duration // delete events older than this; 0 keeps everything

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
	if err := parse(fs, args); err != nil {
		return err
	}
	if *retain != "" {
		d, err := agenttrail.ParseDuration(*retain)
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
	pipeline := ingest.New(store, ingest.Config{}, logger, reg)
	srv := server.New(server.Config{
		Addr:     m.Addr,
		Store:    store,
		Ingest:   pipeline,
		Logger:   logger,
		Registry: reg,
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

func runServe(ctx context.Context, args []string, env *Env) error {
	m := &Main{Logger: slog.New(slog.NewTextHandler(env.Stderr, nil))}
	if err := m.ParseFlags(args, env); err != nil {
		return err
	}
	return m.Run(ctx)
}
