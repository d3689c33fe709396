package client

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/ingest"
	"github.com/agenttrail/agenttrail/server"
	"github.com/agenttrail/agenttrail/sqlite"
)

// realServer is the agenttrail server as `agenttrail serve` wires it: the
// SQLite store, the ingest pipeline and the HTTP API on a loopback address.
type realServer struct {
	URL   string
	Store agenttrail.Store

	srv        *server.Server
	stopWriter context.CancelFunc
	writerDone chan error
	stopped    bool
}

// startServer runs a real server on addr ("127.0.0.1:0" for any port) with
// its store in dataDir, and stops it when the test ends.
func startServer(tb testing.TB, addr, dataDir string) *realServer {
	tb.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(dataDir, "agenttrail.db"), nil)
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	reg := prometheus.NewRegistry()
	p := ingest.New(store, ingest.Config{}, nil, reg)
	wctx, stop := context.WithCancel(ctx)
	s := &realServer{Store: store, stopWriter: stop, writerDone: make(chan error, 1)}
	go func() { s.writerDone <- p.Run(wctx) }()
	s.srv = server.New(server.Config{Addr: addr, Store: store, Ingest: p, Registry: reg})
	if err := s.srv.Open(); err != nil {
		stop()
		<-s.writerDone
		store.Close()
		tb.Fatalf("open server on %s: %v", addr, err)
	}
	s.URL = s.srv.URL()
	tb.Cleanup(s.Stop)
	return s
}

// Stop shuts the server down: no more listening, queued events committed,
// store closed. Later calls do nothing.
func (s *realServer) Stop() {
	if s.stopped {
		return
	}
	s.stopped = true
	s.srv.Close(context.Background())
	s.stopWriter()
	<-s.writerDone
	s.Store.Close()
}
