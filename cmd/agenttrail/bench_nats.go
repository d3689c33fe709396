package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/agenttrail/agenttrail/app"
	"github.com/agenttrail/agenttrail/cluster"
	"github.com/agenttrail/agenttrail/integrity"
	"github.com/agenttrail/agenttrail/server"
)

// natsResult is the measurement of the path through NATS JetStream.
type natsResult struct {
	Events int `json:"events"`
	// Seconds runs from the first send to the writer's last commit;
	// EventsPerSec is Events over it: the path's throughput end to end.
	Seconds      float64 `json:"seconds"`
	EventsPerSec float64 `json:"events_per_sec"`
	// AckedEventsPerSec is what the senders saw acknowledged (durable on
	// the stream, not yet in the store).
	AckedEventsPerSec float64 `json:"acked_events_per_sec"`
	// MaxLagMessages is the most messages the stream held that the writer
	// had not committed (the consumer's pending and unacknowledged),
	// sampled every 100 ms; MaxLagEvents is that many messages in events,
	// at the run's mean of events per message (Messages). DrainSeconds is
	// how long the writer took, after the last acknowledgement, to commit
	// what was left.
	MaxLagMessages uint64  `json:"writer_max_lag_messages"`
	MaxLagEvents   uint64  `json:"writer_max_lag_events"`
	Messages       uint64  `json:"messages"`
	DrainSeconds   float64 `json:"writer_drain_seconds"`
}

// benchNATS runs an ingest node and a writer as `agenttrail serve --nats`
// runs them, on a stream of their own on c.nats and a fresh schema of
// c.store, sends events to the ingest node from a child process as
// benchIngest does (for c.duration, or c.events), and waits until the
// writer has committed them all.
func benchNATS(ctx context.Context, c benchConfig) (natsResult, error) {
	dataDir, store, cleanup, err := benchStore(ctx, c, "nats")
	if err != nil {
		return natsResult{}, err
	}
	defer cleanup()
	var b [4]byte
	rand.Read(b[:])
	suffix := hex.EncodeToString(b[:])
	ncfg := cluster.Config{URL: c.nats, Stream: "AGENTTRAIL_BENCH_" + suffix, Subject: "agenttrail.bench" + suffix}
	conn, err := cluster.Connect(ctx, ncfg)
	if err != nil {
		return natsResult{}, err
	}
	defer conn.Close()
	if err := conn.EnsureStream(ctx); err != nil {
		return natsResult{}, err
	}
	defer conn.DeleteStream(context.Background())

	var stops []func()
	defer func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}()
	// A cluster's nodes with a store sign with a key from a file. On
	// PostgreSQL nothing has made the data directory yet.
	signingKey := filepath.Join(dataDir, "signing.key")
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return natsResult{}, err
	}
	if _, err := integrity.LoadKey(signingKey, true); err != nil {
		return natsResult{}, err
	}
	var urls []string
	for _, role := range []string{app.RoleWriter, app.RoleIngest} {
		m, err := app.Open(ctx, app.Config{
			Addr: "127.0.0.1:0", DataDir: filepath.Join(dataDir, role), Store: store, Role: role, NATS: ncfg, SigningKey: signingKey,
			RateLimit: server.RateLimit{Rate: app.DefaultRate, Burst: app.DefaultBurst},
		})
		if err != nil {
			return natsResult{}, fmt.Errorf("%s node: %w", role, err)
		}
		runCtx, stop := context.WithCancel(ctx)
		ran := make(chan error, 1)
		go func() { ran <- m.Run(runCtx) }()
		stops = append(stops, func() { stop(); <-ran })
		urls = append(urls, m.URL())
	}
	// The first node opened made the admin token, in the writer's data
	// directory; it works on every node.
	token, err := os.ReadFile(filepath.Join(dataDir, app.RoleWriter, app.AdminTokenFile))
	if err != nil {
		return natsResult{}, err
	}

	var maxLag atomic.Uint64
	sampling, stopSampling := context.WithCancel(ctx)
	defer stopSampling()
	go func() {
		for sampling.Err() == nil {
			st := conn.Status(sampling)
			if lag := st.Pending + uint64(st.AckPending); st.Consumer && lag > maxLag.Load() {
				maxLag.Store(lag)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	start := time.Now()
	acked, err := loadChild(ctx, c, urls[1], strings.TrimSpace(string(token)), c.events, c.duration)
	if err != nil {
		return natsResult{}, err
	}
	ackedAt := time.Now()
	// Every acknowledged event is in a message of the stream by now: the
	// writer is done when the consumer has nothing left to fetch or ack.
	n := acked.Events
	var st cluster.Status
	for {
		st = conn.Status(ctx)
		if st.Consumer && st.Messages > 0 && st.Pending == 0 && st.AckPending == 0 {
			break
		}
		if time.Since(ackedAt) > 10*time.Minute {
			return natsResult{}, fmt.Errorf("the writer did not commit the stream within 10 minutes: %+v", st)
		}
		select {
		case <-ctx.Done():
			return natsResult{}, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	done := time.Now()
	secs := done.Sub(start).Seconds()
	lag := maxLag.Load()
	return natsResult{
		Events: n, Seconds: secs, EventsPerSec: float64(n) / secs, AckedEventsPerSec: acked.EventsPerSec,
		MaxLagMessages: lag, MaxLagEvents: lag * uint64(n) / st.Messages, Messages: st.Messages,
		DrainSeconds: done.Sub(ackedAt).Seconds(),
	}, nil
}
