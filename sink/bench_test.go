package sink

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/sqlite"
	"github.com/agenttrail/agenttrail/storetest"
)

// countingHook is a webhook receiver that counts the lines it takes.
func countingHook(b *testing.B) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		n.Add(int64(bytes.Count(body, []byte("\n"))))
		w.WriteHeader(http.StatusOK)
	}))
	b.Cleanup(srv.Close)
	return srv, &n
}

func benchConfig(b *testing.B, c Config) Config {
	b.Helper()
	c.Name = "bench"
	if err := c.Check(); err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkDeliver measures delivery throughput from a store holding a
// backlog (100,000 events) to a file and to a webhook on loopback, with
// the default batch settings but 5,000 events a batch.
func BenchmarkDeliver(b *testing.B) {
	const backlog = 100000
	for _, typ := range []string{TypeFile, TypeWebhook} {
		b.Run(typ, func(b *testing.B) {
			store, events := openStoreB(b, backlog)
			var c Config
			switch typ {
			case TypeFile:
				c = benchConfig(b, Config{Type: TypeFile, Path: filepath.Join(b.TempDir(), "trail.ndjson"), Batch: BatchLimits{MaxEvents: 5000, MaxBytes: 16 << 20}})
			case TypeWebhook:
				srv, _ := countingHook(b)
				c = benchConfig(b, Config{Type: TypeWebhook, URL: srv.URL, Batch: BatchLimits{MaxEvents: 5000, MaxBytes: 16 << 20}})
			}
			last := events[len(events)-1].Seq
			b.ResetTimer()
			var total time.Duration
			for range b.N {
				set, err := New([]Config{c}, store, nil, nil)
				if err != nil {
					b.Fatal(err)
				}
				store.SetCheckpoint(context.Background(), "bench", 0)
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan struct{})
				t0 := time.Now()
				go func() { set.Runners()[0].Run(ctx); close(done) }()
				for {
					set.runners[0].mu.Lock()
					cp := set.runners[0].st.checkpoint
					set.runners[0].mu.Unlock()
					if cp >= last {
						break
					}
					time.Sleep(time.Millisecond)
				}
				total += time.Since(t0)
				cancel()
				<-done
			}
			b.ReportMetric(float64(backlog*b.N)/total.Seconds(), "events/s")
		})
	}
}

// lagRecorder wraps a Deliverer and records, for every event it delivered,
// how long after its receipt the receiver had it.
type lagRecorder struct {
	Deliverer
	mu   sync.Mutex
	lags []time.Duration
}

func (l *lagRecorder) Deliver(ctx context.Context, b *Batch) (*Result, error) {
	res, err := l.Deliverer.Deliver(ctx, b)
	if err == nil && res == nil {
		now := time.Now()
		l.mu.Lock()
		for i := range b.Events {
			l.lags = append(l.lags, now.Sub(b.Events[i].ReceivedAt))
		}
		l.mu.Unlock()
	}
	return res, err
}

// BenchmarkLag ingests 10,000 events a second for 10 seconds (1,000 events
// every 100 ms, one commit each, as the write path's group commit would) while a
// sink with the default batch settings delivers, and reports the p50 and
// p99 of the time from an event's receipt to its receiver having it.
func BenchmarkLag(b *testing.B) {
	for _, typ := range []string{TypeFile, TypeWebhook} {
		b.Run(typ, func(b *testing.B) {
			for range b.N {
				store, _ := openStoreB(b, 0)
				var c Config
				switch typ {
				case TypeFile:
					c = benchConfig(b, Config{Type: TypeFile, Path: filepath.Join(b.TempDir(), "trail.ndjson")})
				case TypeWebhook:
					srv, _ := countingHook(b)
					c = benchConfig(b, Config{Type: TypeWebhook, URL: srv.URL})
				}
				d, err := newDeliverer(c, nil)
				if err != nil {
					b.Fatal(err)
				}
				rec := &lagRecorder{Deliverer: d}
				r, err := NewRunner(c, rec, store, nil)
				if err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan struct{})
				go func() { r.Run(ctx); close(done) }()
				gen := storetest.Events(11, 100000, time.Now(), time.Hour)
				// 5,000 events every 500 ms: 10,000 events/s, in commits as
				// large as a server's group commit makes them at that rate
				// (a commit of 1,000 every 100 ms waits on one fsync each, and
				// the disk cannot keep that pace). Each batch has its own start
				// time, so a slow Append is caught up after instead of
				// lowering the rate.
				const per = 5000
				t0 := time.Now()
				for i := 0; i < len(gen); i += per {
					time.Sleep(time.Until(t0.Add(time.Duration(i/per) * 500 * time.Millisecond)))
					batch := gen[i : i+per]
					now := time.Now()
					for j := range batch {
						batch[j].ReceivedAt = now
					}
					if _, err := store.Append(context.Background(), batch); err != nil {
						b.Fatal(err)
					}
				}
				ingestRate := float64(len(gen)) / time.Since(t0).Seconds()
				for {
					rec.mu.Lock()
					n := len(rec.lags)
					rec.mu.Unlock()
					if n >= len(gen) {
						break
					}
					time.Sleep(10 * time.Millisecond)
				}
				cancel()
				<-done
				slices.Sort(rec.lags)
				p := func(q float64) time.Duration { return rec.lags[int(q*float64(len(rec.lags)-1))] }
				b.ReportMetric(p(0.5).Seconds()*1000, "lag-p50-ms")
				b.ReportMetric(p(0.99).Seconds()*1000, "lag-p99-ms")
				b.ReportMetric(ingestRate, "ingest-events/s")
			}
		})
	}
}

func openStoreB(b *testing.B, n int) (*sqlite.Store, []agenttrail.Event) {
	b.Helper()
	st, err := openSQLite(b)
	if err != nil {
		b.Fatal(err)
	}
	if n == 0 {
		return st, nil
	}
	return st, storetest.AppendAll(b, st, storetest.Events(10, n, storetest.Base(), 24*time.Hour), 5000)
}
