package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/app"
	"github.com/agenttrail/agenttrail/sqlite"
)

// benchStore prepares a fresh, empty store for one benchmark run: a new
// data directory under c.dir, and for PostgreSQL a new schema, whose URL
// (search_path set) is store. cleanup removes both.
func benchStore(ctx context.Context, c benchConfig, name string) (dataDir, store string, cleanup func(), err error) {
	dataDir = filepath.Join(c.dir, name)
	if err := os.RemoveAll(dataDir); err != nil {
		return "", "", nil, err
	}
	rmDir := func() { os.RemoveAll(dataDir) }
	if storeKind(c.store) == "sqlite" {
		return dataDir, "sqlite", rmDir, nil
	}
	var b [4]byte
	rand.Read(b[:])
	schema := "agenttrail_bench_" + name + "_" + hex.EncodeToString(b[:])
	conn, err := pgx.Connect(ctx, c.store)
	if err != nil {
		return "", "", nil, fmt.Errorf("connect %s: %w", storeKind(c.store), err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		return "", "", nil, fmt.Errorf("create schema: %w", err)
	}
	dsn, err := url.Parse(c.store)
	if err != nil {
		return "", "", nil, fmt.Errorf("--store: %w", err)
	}
	q := dsn.Query()
	q.Set("search_path", schema)
	dsn.RawQuery = q.Encode()
	drop := func() {
		if conn, err := pgx.Connect(context.Background(), c.store); err == nil {
			conn.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
			conn.Close(context.Background())
		}
		rmDir()
	}
	return dataDir, dsn.String(), drop, nil
}

// benchQueries builds a store of c.storeEvents events over the last 30 days
// and measures the queries of the performance targets (docs/architecture.md)
// through the Store, next to the plain SQL a store without indexes and
// rollups would run.
func benchQueries(ctx context.Context, c benchConfig, rep *benchReport, progress io.Writer) error {
	if storeKind(c.store) != "sqlite" {
		fmt.Fprintln(progress, "queries: measured on the embedded store only; skipping")
		return nil
	}
	dir, _, cleanup, err := benchStore(ctx, c, "queries")
	if err != nil {
		return err
	}
	defer cleanup()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	dbPath := filepath.Join(dir, app.StoreFile)
	store, err := sqlite.Open(ctx, dbPath, sqlite.Config{})
	if err != nil {
		return err
	}
	defer store.Close()

	fmt.Fprintf(progress, "queries: building a %d-event store over 30 days...\n", c.storeEvents)
	now := time.Now().UTC()
	start := time.Now()
	if err := fillStore(ctx, store, c.storeEvents, now.Add(-30*24*time.Hour), now); err != nil {
		return err
	}
	rep.StoreEvents, rep.BuildSecs = c.storeEvents, time.Since(start).Seconds()

	raw, err := sql.Open("sqlite", "file:"+dbPath+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		return err
	}
	defer raw.Close()

	since24h, since30d := now.Add(-24*time.Hour), now.Add(-30*24*time.Hour)
	nsSince, nsUntil := since30d.UnixNano(), now.UnixNano()
	month := agenttrail.Filter{Since: since30d, Until: now}
	aggregate := func(by agenttrail.Dimension) func() error {
		return func() error {
			_, err := store.Aggregate(ctx, month, by)
			return err
		}
	}
	hourly := func(by agenttrail.Dimension) func() error {
		return func() error {
			_, err := store.Series(ctx, month, agenttrail.Hour, by)
			return err
		}
	}
	// groupBy is the plain SQL of aggregate(by), by a column.
	groupBy := func(column string) func() error {
		return sqlRun(raw, `SELECT `+column+`, count(*), sum(input_tokens), sum(output_tokens), sum(cache_read_tokens),
			sum(cache_write_tokens), sum(cost_usd) FROM events WHERE time >= ? AND time < ? GROUP BY `+column, nsSince, nsUntil)
	}
	cases := []struct {
		name     string
		target   float64
		run      func() error
		baseName string
		base     func() error
	}{
		{
			name: "filtered page (1 agent, 24h, 200 rows)", target: 20,
			run: func() error {
				p, err := store.Query(ctx, agenttrail.Query{Filter: agenttrail.Filter{ActorID: []string{"agent-sre-copilot"}, Since: since24h},
					Sort: agenttrail.SortTimeDesc, Limit: 200})
				if err == nil && len(p.Events) != 200 {
					err = fmt.Errorf("page has %d events, want 200", len(p.Events))
				}
				return err
			},
			baseName: "same page, full scan",
			base: sqlRun(raw, `SELECT * FROM events NOT INDEXED WHERE actor_id = ? AND time >= ? ORDER BY time DESC LIMIT 200`,
				"agent-sre-copilot", since24h.UnixNano()),
		},
		{
			name: "aggregate by source, 30 days", target: 50,
			run: aggregate(agenttrail.DimSource), baseName: "GROUP BY source", base: groupBy("source"),
		},
		{
			name: "aggregate by model (LLM cost), 30 days", target: 50,
			run: aggregate(agenttrail.DimModel), baseName: "GROUP BY model", base: groupBy("model"),
		},
		{
			name: "hourly series, 30 days", target: 50,
			run:      hourly(""),
			baseName: "GROUP BY hour",
			base: sqlRun(raw, `SELECT time - time % 3600000000000 AS h, count(*) FROM events WHERE time >= ? AND time < ? GROUP BY h`,
				nsSince, nsUntil),
		},
		{
			name: "hourly series by result, 30 days", target: 50,
			run:      hourly(agenttrail.DimResult),
			baseName: "GROUP BY hour, result",
			base: sqlRun(raw, `SELECT time - time % 3600000000000 AS h, result, count(*) FROM events WHERE time >= ? AND time < ? GROUP BY h, result`,
				nsSince, nsUntil),
		},
	}
	for _, tc := range cases {
		fmt.Fprintf(progress, "queries: %s...\n", tc.name)
		ds, err := timeRuns(c.runs, tc.run)
		if err != nil {
			return fmt.Errorf("%s: %w", tc.name, err)
		}
		bs, err := timeRuns(c.baselineRuns, tc.base)
		if err != nil {
			return fmt.Errorf("%s: %w", tc.baseName, err)
		}
		p95, b95 := percentile(ds, 95), percentile(bs, 95)
		rep.Queries = append(rep.Queries, queryResult{
			Name: tc.name, P50Millis: millis(percentile(ds, 50)), P95Millis: millis(p95), TargetMillis: tc.target,
			BaselineName: tc.baseName, BaselineP95: millis(b95), SpeedupVsBase: float64(b95) / float64(max(p95, time.Microsecond)),
		})
	}
	return nil
}

// timeRuns runs f once to warm caches, then n times, and returns each run's
// duration.
func timeRuns(n int, f func() error) ([]time.Duration, error) {
	if err := f(); err != nil {
		return nil, err
	}
	ds := make([]time.Duration, 0, n)
	for range n {
		t := time.Now()
		if err := f(); err != nil {
			return nil, err
		}
		ds = append(ds, time.Since(t))
	}
	return ds, nil
}

// sqlRun returns a function that runs query and reads every row.
func sqlRun(db *sql.DB, query string, args ...any) func() error {
	return func() error {
		rows, err := db.Query(query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		cols, _ := rows.Columns()
		vals := make([]any, len(cols))
		for i := range vals {
			vals[i] = new(any)
		}
		for rows.Next() {
			if err := rows.Scan(vals...); err != nil {
				return err
			}
		}
		return rows.Err()
	}
}

// fillStore appends n generated events with times spread over [from, to),
// in time order, in large batches.
func fillStore(ctx context.Context, store agenttrail.Store, n int, from, to time.Time) error {
	gen := newTraffic(1)
	span := to.Sub(from)
	times := make([]int64, n)
	for i := range times {
		times[i] = from.UnixNano() + gen.rnd.Int64N(int64(span))
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	const batchSize = 10000
	batch := make([]agenttrail.Event, 0, batchSize)
	for i, ns := range times {
		e := gen.event(time.Unix(0, ns))
		e.Normalize(to, "")
		if err := e.Validate(to); err != nil {
			return fmt.Errorf("generated event %d: %w", i, err)
		}
		batch = append(batch, e)
		if len(batch) == batchSize || i == n-1 {
			if _, err := store.Append(ctx, batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	return nil
}
