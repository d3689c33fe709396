package postgres_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/postgres"
	"github.com/agenttrail/agenttrail/storetest"
	"github.com/jackc/pgx/v5"
)

// partitions lists the partitions of events in the store's schema.
func partitions(t testing.TB, dsn string) []string {
	t.Helper()
	return queryStrings(t, dsn, `SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'events'::regclass ORDER BY 1`)
}

// queryStrings runs a query of one text column on its own connection.
func queryStrings(t testing.TB, dsn, sql string, args ...any) []string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

// queryInt runs a query of one integer on its own connection.
func queryInt(t testing.TB, dsn, sql string, args ...any) int64 {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	var n int64
	if err := conn.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func partitionOf(d time.Time) string { return "events_" + d.UTC().Format("20060102") }

func TestPartitionsAhead(t *testing.T) {
	_, dsn := openStore(t)
	got := partitions(t, dsn)
	today := time.Now().UTC()
	for _, d := range []time.Time{today, today.AddDate(0, 0, 1), today.AddDate(0, 0, 2)} {
		if !slices.Contains(got, partitionOf(d)) {
			t.Errorf("after Open, partitions = %v, want %s among them", got, partitionOf(d))
		}
	}
}

func TestPartitionsOnDemand(t *testing.T) {
	s, dsn := openStore(t)
	now := time.Now().UTC()
	days := []time.Time{
		time.Date(2019, 12, 31, 23, 59, 59, 999999000, time.UTC), // late by years
		time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC),              // the next day, on midnight
		now.Add(-40 * 24 * time.Hour),
		now.Add(20 * time.Hour), // ahead of the clock, within the skew Validate allows
	}
	var batch []agenttrail.Event
	for i, d := range days {
		e := storetest.Events(int64(i), 1, d, time.Microsecond)[0]
		batch = append(batch, e)
	}
	res, err := s.Append(context.Background(), batch)
	if err != nil || res.Inserted != len(days) {
		t.Fatalf("Append(%d events on other days) = %+v, %v, want all inserted", len(days), res, err)
	}
	got := partitions(t, dsn)
	for i, d := range days {
		name := partitionOf(d)
		if !slices.Contains(got, name) {
			t.Errorf("partitions = %v, want %s", got, name)
			continue
		}
		// Each event landed in the partition of its own UTC day.
		n := queryInt(t, dsn, "SELECT count(*) FROM "+name+" WHERE id = $1", batch[i].ID)
		if n != 1 {
			t.Errorf("SELECT %s WHERE id = %s = %d rows, want 1", name, batch[i].ID, n)
		}
	}
}

// TestPartitionDroppedElsewhere drops a partition behind the store's back:
// its cache is stale, and Append must recover rather than fail for good.
func TestPartitionDroppedElsewhere(t *testing.T) {
	s, dsn := openStore(t)
	ctx := context.Background()
	old := time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)
	storetest.AppendAll(t, s, storetest.Events(1, 10, old, time.Hour), 10)
	exec(t, dsn, "DROP TABLE "+partitionOf(old))
	res, err := s.Append(ctx, storetest.Events(2, 10, old, time.Hour))
	if err != nil || res.Inserted != 10 {
		t.Fatalf("Append(after its partition was dropped) = %+v, %v, want 10 inserted", res, err)
	}
	if n := queryInt(t, dsn, "SELECT count(*) FROM "+partitionOf(old)); n != 10 {
		t.Errorf("recreated partition holds %d events, want 10", n)
	}
}

// TestReopen checks what lives in the database, not in the Store: the seq
// counter and the ids that deduplicate, across a restart.
func TestReopen(t *testing.T) {
	s, dsn := openStore(t)
	ctx := context.Background()
	events := storetest.Events(7, 100, storetest.Base(), time.Hour)
	first := storetest.AppendAll(t, s, events[:60], 60)
	s.Close()

	s2, err := postgres.Open(ctx, dsn, postgres.Config{})
	if err != nil {
		t.Fatalf("Open(again) error: %v", err)
	}
	defer s2.Close()
	batch := append([]agenttrail.Event(nil), events...)
	res, err := s2.Append(ctx, batch)
	if err != nil || res.Inserted != 40 || res.Duplicates != 60 {
		t.Fatalf("Append(60 stored + 40 new) after reopening = %+v, %v, want 40 inserted, 60 duplicates", res, err)
	}
	if got, want := batch[60].Seq, first[59].Seq+1; got != want {
		t.Errorf("first seq after reopening = %d, want %d", got, want)
	}
	if n, want := queryInt(t, dsn, "SELECT count(*) FROM schema_migrations"), migrationCount(t); n != want {
		t.Errorf("schema_migrations has %d rows after two Opens, want %d, one per migration", n, want)
	}
}

// TestOpenConcurrently opens one schema from several goroutines: the
// advisory lock must apply each migration exactly once.
func TestOpenConcurrently(t *testing.T) {
	dsn, _ := newSchema(t)
	ctx := context.Background()
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			s, err := postgres.Open(ctx, dsn, postgres.Config{})
			if err == nil {
				s.Close()
			}
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Errorf("Open() concurrently error: %v", err)
		}
	}
	if n, want := queryInt(t, dsn, "SELECT count(*) FROM schema_migrations"), migrationCount(t); n != want {
		t.Errorf("schema_migrations has %d rows, want %d, one per migration", n, want)
	}
}

// migrationCount is the number of embedded migrations.
func migrationCount(t *testing.T) int64 {
	t.Helper()
	names, err := filepath.Glob("migrations/*.sql")
	if err != nil || len(names) == 0 {
		t.Fatalf("migrations: %v, %d files", err, len(names))
	}
	return int64(len(names))
}
