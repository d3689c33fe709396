package postgres_test

import (
	"context"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/storetest"
	"github.com/jackc/pgx/v5"
)

// BenchmarkRead measures the reads of the performance targets
// (docs/architecture.md) on a store of 30 days of events (1,000,000 unless
// AGENTTRAIL_BENCH_EVENTS says otherwise), each against the plain GROUP BY over
// the events table it replaces. Besides ns/op it reports the 95th percentile in
// ms.
func BenchmarkRead(b *testing.B) {
	n := 1_000_000
	if v := os.Getenv("AGENTTRAIL_BENCH_EVENTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 5000 {
			b.Fatalf("AGENTTRAIL_BENCH_EVENTS=%q: want a number of at least 5000", v)
		}
	}
	s, dsn := openStore(b)
	ctx := context.Background()
	until := time.Now().UTC().Truncate(time.Minute)
	since := until.Add(-30 * 24 * time.Hour)
	// Batches in time order, as ingest sees them.
	const batch = 5000
	step := until.Sub(since) / time.Duration(n/batch)
	for i := 0; i < n/batch; i++ {
		storetest.AppendAll(b, s, storetest.Events(int64(i), batch, since.Add(time.Duration(i)*step), step), batch)
	}
	exec(b, dsn, "ANALYZE")
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)

	month := agenttrail.Filter{Since: since.Add(17 * time.Minute), Until: until}
	day := agenttrail.Filter{ActorID: []string{"agent-03"}, Since: until.Add(-24 * time.Hour), Until: until}
	groupBy := func(col string) func() error {
		return func() error {
			rows, err := conn.Query(ctx, `SELECT `+col+`, count(*), sum(input_tokens), sum(output_tokens),
				sum(cache_read_tokens), sum(cache_write_tokens), sum(reasoning_tokens), sum(cost_usd)
				FROM events WHERE time >= $1 AND time < $2 GROUP BY 1`, month.Since, month.Until)
			if err != nil {
				return err
			}
			rows.Close()
			return rows.Err()
		}
	}
	// series is the plain GROUP BY of a series by bucket, and by col
	// when it is not "".
	series := func(bucket, col string) func() error {
		by, key := "1", ""
		if col != "" {
			by, key = "1, 2", ", "+col
		}
		return func() error {
			rows, err := conn.Query(ctx, `SELECT date_trunc('`+bucket+`', time)`+key+`, count(*), sum(cost_usd)
				FROM events WHERE time >= $1 AND time < $2 GROUP BY `+by, month.Since, month.Until)
			if err != nil {
				return err
			}
			rows.Close()
			return rows.Err()
		}
	}
	for _, r := range []struct {
		name string
		read func() error
	}{
		{"page/agent-24h-200", func() error {
			_, err := s.Query(ctx, agenttrail.Query{Filter: day, Sort: agenttrail.SortTimeDesc, Limit: 200})
			return err
		}},
		{"aggregate/30d-by-source", func() error { _, err := s.Aggregate(ctx, month, agenttrail.DimSource); return err }},
		{"aggregate/30d-by-action", func() error { _, err := s.Aggregate(ctx, month, agenttrail.DimAction); return err }},
		{"aggregate/30d-by-project", func() error { _, err := s.Aggregate(ctx, month, agenttrail.DimProject); return err }},
		{"series/30d-hourly", func() error { _, err := s.Series(ctx, month, agenttrail.Hour, ""); return err }},
		{"series/30d-hourly-by-source", func() error {
			_, err := s.Series(ctx, month, agenttrail.Hour, agenttrail.DimSource)
			return err
		}},
		{"series/30d-daily-by-action", func() error {
			_, err := s.Series(ctx, month, agenttrail.Day, agenttrail.DimAction)
			return err
		}},
		{"plain-group-by/30d-by-source", groupBy("source")},
		{"plain-group-by/30d-by-action", groupBy("action")},
		{"plain-group-by/30d-hourly", series("hour", "")},
		{"plain-group-by/30d-hourly-by-source", series("hour", "source")},
		{"plain-group-by/30d-daily-by-action", series("day", "action")},
	} {
		b.Run(r.name, func(b *testing.B) {
			took := make([]time.Duration, 0, b.N)
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				if err := r.read(); err != nil {
					b.Fatal(err)
				}
				took = append(took, time.Since(t0))
			}
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)*95/100].Microseconds())/1000, "p95-ms")
		})
	}
}
