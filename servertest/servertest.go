// Package servertest runs a real agenttrail server in-process for tests:
// the assembly of package app, as `agenttrail serve` runs it (the SQLite
// store, the spool, tokens, redaction, the audit of reads) on a loopback
// listener. Capture proxies and the SDK test against it instead of a
// stand-in.
package servertest

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/app"
	"github.com/agenttrail/agenttrail/internal/private"
	"github.com/agenttrail/agenttrail/server"
)

// Token is the admin token of every test server. It is fixed, like the
// certificate of httptest's TLS servers, so a test can build a client
// before its server starts (to record while the server is down), and it
// opens nothing but test servers.
const Token = "at_7e57000000000001_" + "7e57000000000000000000000000000000000000000000000000000000000001"

// Server is a running agenttrail server. URL is its base URL, Token its
// admin token; Store is the store it writes to, which tests may read
// directly to see what was stored without their reads being audited.
type Server struct {
	URL      string
	Addr     string
	DataDir  string
	Token    string
	Store    agenttrail.Store
	Registry *prometheus.Registry

	stop     context.CancelFunc
	ran      chan error
	stopOnce sync.Once
}

// Start runs a server on 127.0.0.1 with a fresh store in t.TempDir(). It is
// stopped when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartAt(t, "127.0.0.1:0", t.TempDir())
}

// StartAt runs a server on addr with its data in dataDir, so a test can stop
// a server and start it again on the same address and data.
func StartAt(t testing.TB, addr, dataDir string) *Server {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	if err := addToken(dataDir); err != nil {
		t.Fatalf("servertest: %v", err)
	}
	m, err := app.Open(context.Background(), app.Config{Addr: addr, DataDir: dataDir, Logger: logger})
	if err != nil {
		t.Fatalf("servertest: open server on %s: %v", addr, err)
	}
	ctx, stop := context.WithCancel(context.Background())
	s := &Server{
		URL: m.URL(), DataDir: dataDir, Token: Token, Store: m.Store(), Registry: m.Registry(),
		stop: stop, ran: make(chan error, 1),
	}
	s.Addr = s.URL[len("http://"):]
	go func() { s.ran <- m.Run(ctx) }()
	t.Cleanup(func() {
		if err := s.stopErr(); err != nil {
			t.Errorf("servertest: server stopped with %v", err)
		}
	})
	return s
}

// addToken puts Token in the token store of dataDir, unless a previous
// server on the same data put it there already.
func addToken(dataDir string) error {
	if err := private.MkdirAll(dataDir); err != nil {
		return err
	}
	file := server.NewTokenFile(filepath.Join(dataDir, app.TokensFile))
	recs, err := file.List()
	if err != nil {
		return err
	}
	for _, r := range recs {
		if r.Name == "servertest" {
			return nil
		}
	}
	_, err = file.Import(Token, "servertest", server.RoleAdmin, server.AllOrgs, "", time.Now())
	return err
}

// Stop shuts the server down as `agenttrail serve` does on SIGTERM: it
// stops listening, answers the requests in flight, commits what is queued
// and closes the store. It is safe to call more than once.
func (s *Server) Stop() { s.stopErr() }

func (s *Server) stopErr() error {
	var err error
	s.stopOnce.Do(func() {
		s.stop()
		err = <-s.ran
	})
	return err
}

// testWriter sends the server's warnings to the test log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(string(b))
	return len(b), nil
}
