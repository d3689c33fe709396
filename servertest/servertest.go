// Package servertest runs a real agenttrail server in-process for tests: the
// SQLite store, the ingest pipeline and the HTTP API on a loopback listener,
// the same parts `agenttrail serve` wires together. Capture proxies and the
// SDK test against it instead of a stand-in.
package servertest

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/ingest"
	"github.com/agenttrail/agenttrail/server"
	"github.com/agenttrail/agenttrail/sqlite"
)

// Server is a running agenttrail server. URL is its base URL; Store the store
// it writes to, which tests may read directly to see what was stored.
type Server struct {
	URL      string
	Addr     string
	DataDir  string
	Store    agenttrail.Store
	Registry *prometheus.Registry

	srv        *server.Server
	stopWriter context.CancelFunc
	writerDone chan error
	stopOnce   sync.Once
}

// Start runs a server on 127.0.0.1 with a fresh store in t.TempDir(). It is
// stopped when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartAt(t, "127.0.0.1:0", t.TempDir())
}

// StartAt runs a server on addr with the store in dataDir, so a test can stop
// a server and start it again on the same address and data.
func StartAt(t testing.TB, addr, dataDir string) *Server {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	store, err := sqlite.Open(context.Background(), filepath.Join(dataDir, "agenttrail.db"), logger)
	if err != nil {
		t.Fatalf("servertest: open store: %v", err)
	}
	reg := prometheus.NewRegistry()
	pipeline := ingest.New(store, ingest.Config{}, logger, reg)
	writerCtx, stopWriter := context.WithCancel(context.Background())
	s := &Server{DataDir: dataDir, Store: store, Registry: reg, stopWriter: stopWriter, writerDone: make(chan error, 1)}
	go func() { s.writerDone <- pipeline.Run(writerCtx) }()
	s.srv = server.New(server.Config{Addr: addr, Store: store, Ingest: pipeline, Logger: logger, Registry: reg})
	if err := s.srv.Open(); err != nil {
		stopWriter()
		<-s.writerDone
		store.Close()
		t.Fatalf("servertest: open server on %s: %v", addr, err)
	}
	s.URL = s.srv.URL()
	s.Addr = s.URL[len("http://"):]
	t.Cleanup(s.Stop)
	return s
}

// Stop shuts the server down gracefully: it stops listening, commits what is
// queued and closes the store. It is safe to call more than once.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		s.srv.Close(context.Background())
		s.stopWriter()
		<-s.writerDone
		s.Store.Close()
	})
}

// testWriter sends the server's warnings to the test log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(string(b))
	return len(b), nil
}
