package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/oklog/run"
)

// listening is one HTTP server of a capture process and the listener it
// serves on, bound before the process opens its Recorder: a process that
// cannot listen records nothing.
type listening struct {
	srv *http.Server
	ln  net.Listener
}

// serveCapture serves every server until ctx ends (SIGINT, SIGTERM) or one
// of them fails, each an actor of one run.Group, so every capture proxy
// stops the same way: the first actor to return interrupts the rest, and
// each server stops accepting and gives requests in flight grace to finish
// before cutting them (each is recorded either way). The caller then closes
// its proxy and its Recorder, whose stop event is the process's last.
//
// Every server logs its connection errors to logger as warnings and allows
// a client 30 seconds to send its request's headers, unless it says
// otherwise.
func serveCapture(ctx context.Context, logger *slog.Logger, grace time.Duration, servers ...listening) error {
	for _, s := range servers {
		if s.srv.ErrorLog == nil {
			s.srv.ErrorLog = slog.NewLogLogger(logger.Handler(), slog.LevelWarn)
		}
		if s.srv.ReadHeaderTimeout == 0 {
			s.srv.ReadHeaderTimeout = 30 * time.Second
		}
	}
	var g run.Group
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g.Add(func() error { <-ctx.Done(); return nil }, func(error) { cancel() })
	for _, s := range servers {
		g.Add(func() error {
			if err := s.srv.Serve(s.ln); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("serve %s: %w", s.ln.Addr(), err)
			}
			return nil
		}, func(error) {
			sctx, cancel := context.WithTimeout(context.Background(), grace)
			defer cancel()
			if s.srv.Shutdown(sctx) != nil {
				s.srv.Close()
			}
		})
	}
	return g.Run()
}

// closeListeners closes listeners bound before a start that failed.
func closeListeners(servers ...listening) {
	for _, s := range servers {
		s.ln.Close()
	}
}
