package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/storetest"
)

// Run with:
//
//	go test -run '^$' -bench Append -benchtime 60x ./sqlite/
//	go test -run '^$' -bench Read1M -benchtime 20x ./sqlite/
//
// BenchmarkRead1M builds a 1M-event file first (about 20 s on 2 cores).
// Append benchmarks report events/s of wall time and per CPU second; the
// latter is steadier on a shared machine.

func benchOpen(b *testing.B, synchronous string) *Store {
	b.Helper()
	s, err := open(context.Background(), filepath.Join(b.TempDir(), "bench.db"), nil, synchronous)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// freshBatches cycles through a pool of generated events and makes each
// copy look live: a new UUIDv7 id, as the server gives an event without
// one, and a time just before now, as capture surfaces record them.
type freshBatches struct {
	pool []agenttrail.Event
	next int
}

func (f *freshBatches) batch(size int) []agenttrail.Event {
	out := make([]agenttrail.Event, size)
	now := time.Now().UTC()
	for i := range out {
		e := f.pool[f.next%len(f.pool)]
		f.next++
		e.Time = now.Add(-time.Duration(f.next%2000) * time.Millisecond)
		e.ID = agenttrail.NewID(e.Time)
		e.ReceivedAt = now
		out[i] = e
	}
	return out
}

func newFresh() *freshBatches {
	return &freshBatches{pool: storetest.Events(1, 20000, time.Now().Add(-time.Hour), time.Hour)}
}

// BenchmarkAppend measures the group-commit path: one transaction per batch.
func BenchmarkAppend(b *testing.B) {
	for _, sync := range []string{"FULL", "NORMAL"} {
		for _, size := range []int{1000, 5000} {
			b.Run(fmt.Sprintf("sync=%s/batch=%d", sync, size), func(b *testing.B) {
				appendFresh(b, benchOpen(b, sync), size)
			})
		}
	}
}

// BenchmarkAppendTaskIndexes measures what the partial trace and session
// indexes cost Append, in one run: the same batches (two events in three
// in a trace and a session) into a store with the indexes and into one
// without them.
func BenchmarkAppendTaskIndexes(b *testing.B) {
	for _, indexes := range []string{"on", "off"} {
		b.Run("indexes="+indexes, func(b *testing.B) {
			s := benchOpen(b, "NORMAL")
			if indexes == "off" {
				if _, err := s.w.Exec("DROP INDEX events_trace; DROP INDEX events_session"); err != nil {
					b.Fatal(err)
				}
			}
			appendFresh(b, s, 5000)
		})
	}
}

// appendFresh appends b.N fresh batches of size events to s and reports
// the rate.
func appendFresh(b *testing.B, s *Store, size int) {
	f := newFresh()
	b.ResetTimer()
	cpu0 := cpuTime()
	for range b.N {
		b.StopTimer()
		batch := f.batch(size)
		b.StartTimer()
		if _, err := s.Append(b.Context(), batch); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, b.N*size, cpu0)
}

// BenchmarkAppendNaive is the design the ingest target is compared against
// (docs/architecture.md, "Performance targets"): one transaction per event,
// same schema (rollups included), same engine.
func BenchmarkAppendNaive(b *testing.B) {
	s := benchOpen(b, "FULL")
	f := newFresh()
	b.ResetTimer()
	cpu0 := cpuTime()
	for range b.N {
		b.StopTimer()
		batch := f.batch(1)
		b.StartTimer()
		if _, err := s.Append(b.Context(), batch); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, b.N, cpu0)
}

// cpuTime is the CPU time this process has used. The benchmarks report
// throughput per CPU second next to wall-clock throughput, which shared
// machines make noisy. It includes the time to generate batches.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportRate(b *testing.B, events int, cpu0 time.Duration) {
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
	if cpu := cpuTime() - cpu0; cpu > 0 {
		b.ReportMetric(float64(events)/cpu.Seconds(), "events/cpu-s")
	}
}

// build appends n events spread over the 30 days before end, in time
// order, in batches of 10,000, as a store that has been live for a month
// would have received them, and folds the finished days.
func build(b *testing.B, s *Store, n int, end time.Time) {
	b.Helper()
	const batch = 10000
	start := end.Add(-30 * 24 * time.Hour)
	s.now = func() time.Time { return start }
	step := 30 * 24 * time.Hour / time.Duration((n+batch-1)/batch)
	for i := 0; i < n; i += batch {
		from := start.Add(time.Duration(i/batch) * step)
		events := storetest.Events(int64(i), min(batch, n-i), from, step)
		if _, err := s.Append(context.Background(), events); err != nil {
			b.Fatal(err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = time.Now
	if err := s.compact(context.Background()); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkRead1M measures the read targets (docs/architecture.md, "Performance
// targets") on a 1M-event store: a filtered page, an aggregate and hourly
// series over 30 days, and the plain GROUP BY over the events table they are
// compared with. Each reports its p95 in ms.
func BenchmarkRead1M(b *testing.B) {
	end := time.Now().UTC()
	s := benchOpen(b, "NORMAL")
	start := time.Now()
	build(b, s, 1_000_000, end)
	var pages, pageBytes int64
	s.r.QueryRow("PRAGMA page_count").Scan(&pages)
	s.r.QueryRow("PRAGMA page_size").Scan(&pageBytes)
	b.Logf("built 1M events in %v: %d MiB", time.Since(start), pages*pageBytes>>20)
	b.ResetTimer()
	month := agenttrail.Filter{Since: end.Add(-30 * 24 * time.Hour), Until: end}
	ctx := context.Background()
	cases := []struct {
		name string
		fn   func() error
	}{
		{"Query/agent-24h-200", func() error {
			_, err := s.Query(ctx, agenttrail.Query{Filter: agenttrail.Filter{ActorID: []string{"agent-03"}, Since: end.Add(-24 * time.Hour)}, Sort: agenttrail.SortTimeDesc, Limit: 200})
			return err
		}},
		{"Query/org-agent-24h-200", func() error {
			_, err := s.Query(ctx, agenttrail.Query{Filter: agenttrail.Filter{Org: []string{"acme"}, ActorID: []string{"agent-03"}, Since: end.Add(-24 * time.Hour)}, Sort: agenttrail.SortTimeDesc, Limit: 200})
			return err
		}},
		{"Query/newest-200", func() error {
			_, err := s.Query(ctx, agenttrail.Query{Sort: agenttrail.SortTimeDesc, Limit: 200})
			return err
		}},
		{"Query/source-failure-200", func() error {
			_, err := s.Query(ctx, agenttrail.Query{Filter: agenttrail.Filter{Source: []string{agenttrail.SourceKube}, Result: []string{"failure"}}, Sort: agenttrail.SortTimeDesc, Limit: 200})
			return err
		}},
		{"Query/action-200", func() error {
			_, err := s.Query(ctx, agenttrail.Query{Filter: agenttrail.Filter{Action: []string{"s3:GetObject"}}, Sort: agenttrail.SortTimeDesc, Limit: 200})
			return err
		}},
		{"Aggregate/source-30d", func() error {
			_, err := s.Aggregate(ctx, month, agenttrail.DimSource)
			return err
		}},
		{"Aggregate/model-30d-org", func() error {
			f := month
			f.Org = []string{"acme"}
			_, err := s.Aggregate(ctx, f, agenttrail.DimModel)
			return err
		}},
		{"Aggregate/actor_id-30d", func() error {
			_, err := s.Aggregate(ctx, month, agenttrail.DimActorID)
			return err
		}},
		{"Aggregate/source-30d-q", func() error {
			f := month
			f.Q = "github" // not in any rollup: GROUP BY over the events
			_, err := s.Aggregate(ctx, f, agenttrail.DimSource)
			return err
		}},
		{"Series/hour-30d", func() error {
			_, err := s.Series(ctx, month, agenttrail.Hour, "")
			return err
		}},
		{"Series/hour-30d-by-source", func() error {
			_, err := s.Series(ctx, month, agenttrail.Hour, agenttrail.DimSource)
			return err
		}},
		{"Series/day-30d-by-model", func() error {
			_, err := s.Series(ctx, month, agenttrail.Day, agenttrail.DimModel)
			return err
		}},
		{"GroupBy/plain-source-all", func() error {
			return drain(s.r.QueryContext(ctx, "SELECT source, count(*) FROM events GROUP BY source"))
		}},
		{"GroupBy/plain-source-30d", func() error {
			return drain(s.r.QueryContext(ctx, "SELECT source, count(*) FROM events WHERE time >= ? AND time < ? GROUP BY source",
				month.Since.UnixNano(), month.Until.UnixNano()))
		}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			for range b.N {
				t0 := time.Now()
				if err := c.fn(); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)*95/100].Microseconds())/1000, "p95-ms")
		})
	}
}

func drain(rows *sql.Rows, err error) error {
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
	}
	return rows.Err()
}

// BenchmarkAppendTree measures what the integrity tree costs the write
// path: two stores, one keeping the tree and one not, take the same batches
// in turn, so both see the same machine load; it reports each one's events
// per second of its own Append time and the ratio (the target is ≥ 0.9).
//
//	go test -run '^$' -bench AppendTree -benchtime 100x ./sqlite/
func BenchmarkAppendTree(b *testing.B) {
	const size = 5000
	with, without := benchOpen(b, "FULL"), benchOpen(b, "FULL")
	without.noTree = true
	f := newFresh()
	var tWith, tWithout time.Duration
	for i := range b.N {
		stores := []*Store{with, without}
		if i%2 == 1 {
			stores[0], stores[1] = without, with
		}
		batch := f.batch(size)
		for _, s := range stores {
			c := slices.Clone(batch)
			start := time.Now()
			if _, err := s.Append(b.Context(), c); err != nil {
				b.Fatal(err)
			}
			if s == with {
				tWith += time.Since(start)
			} else {
				tWithout += time.Since(start)
			}
		}
	}
	n := float64(b.N * size)
	b.ReportMetric(n/tWith.Seconds(), "events/s-tree")
	b.ReportMetric(n/tWithout.Seconds(), "events/s-no-tree")
	b.ReportMetric(tWithout.Seconds()/tWith.Seconds(), "ratio")
}
