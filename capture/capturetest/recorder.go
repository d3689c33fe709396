// Package capturetest holds what the capture surfaces' tests share: the
// SDK's Recorder pointed at a test server, waiting for the events that
// server stored, and measuring the latency a proxy adds. It is imported by
// tests only.
package capturetest

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail/client"
	"github.com/agenttrail/agenttrail/servertest"
)

// Recorder returns the SDK's Recorder sending to the test server
// (servertest) at url, with its token. The server need not be running yet:
// events spool to a directory of the test's own until it is. It flushes every 20 ms, retries at least every 100 ms and
// sends no heartbeats, so events reach the store soon after they are
// recorded. It logs errors to the test's output and is closed when the
// test ends, after the cleanups registered later (such as a server
// started afterwards) have run.
func Recorder(t testing.TB, url string) *client.Recorder {
	t.Helper()
	c := client.New(url, client.WithToken(servertest.Token))
	t.Cleanup(c.CloseIdleConnections)
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelError}))
	rec, err := client.NewRecorder(c, client.RecorderConfig{
		SpoolDir:      t.TempDir(),
		FlushInterval: 20 * time.Millisecond,
		MaxBackoff:    100 * time.Millisecond,
		Heartbeat:     client.HeartbeatOff,
		Logger:        logger,
	})
	if err != nil {
		t.Fatalf("capturetest: new recorder: %v", err)
	}
	t.Cleanup(func() {
		// What was not delivered by now never will be: do not let a
		// stopped server hold the test up.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		rec.Close(ctx)
	})
	return rec
}

// FreeAddr returns a loopback address nothing listens on, for a server a
// test starts later (servertest.StartAt) while its clients already point
// there.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("capturetest: listen: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}
