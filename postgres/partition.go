package postgres

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Events live in one partition per UTC day named events_YYYYMMDD. A partition
// is created as a plain table and then attached: ATTACH PARTITION takes only
// a SHARE UPDATE EXCLUSIVE lock on events, so creating tomorrow's partition
// never waits for, or holds up, running queries and inserts the way CREATE
// TABLE ... PARTITION OF (ACCESS EXCLUSIVE) would.

const partitionPrefix = "events_"

// partitionName returns the name of the partition that holds day d.
func partitionName(d time.Time) string { return partitionPrefix + d.Format("20060102") }

// partitionDay parses a partition name; ok is false for other tables.
func partitionDay(name string) (time.Time, bool) {
	s, ok := strings.CutPrefix(name, partitionPrefix)
	if !ok || len(s) != 8 {
		return time.Time{}, false
	}
	d, err := time.Parse("20060102", s)
	return d, err == nil
}

// loadPartitions replaces the cache of existing partitions with what the
// catalog says. The caller holds the writer slot (or owns s exclusively).
func (s *Store) loadPartitions(ctx context.Context) error {
	days, err := s.partitions(ctx, s.pool)
	if err != nil {
		return err
	}
	s.partMu.Lock()
	defer s.partMu.Unlock()
	s.days = map[time.Time]bool{}
	for _, d := range days {
		s.days[d] = true
	}
	return nil
}

// querier is what pgxpool.Pool and pgx.Tx have in common.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// partitions lists the days that have a partition, oldest first.
func (s *Store) partitions(ctx context.Context, q querier) ([]time.Time, error) {
	rows, err := q.Query(ctx, `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'events'::regclass`)
	if err != nil {
		return nil, formatError("postgres: list partitions", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, formatError("postgres: list partitions", err)
	}
	var days []time.Time
	for _, n := range names {
		if d, ok := partitionDay(n); ok {
			days = append(days, d)
		}
	}
	sort.Slice(days, func(i, j int) bool { return days[i].Before(days[j]) })
	return days, nil
}

// ensurePartitions creates the partitions of days that the cache does not
// know, in one short transaction. The caller holds the writer slot (or owns s
// exclusively).
func (s *Store) ensurePartitions(ctx context.Context, days []time.Time) error {
	s.partMu.Lock()
	defer s.partMu.Unlock()
	var missing []time.Time
	for _, d := range days {
		if !s.days[d] {
			missing = append(missing, d)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	sort.Slice(missing, func(i, j int) bool { return missing[i].Before(missing[j]) })
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return formatError("postgres: create partition", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	// Bounded, so a lock queue on events cannot stall the writer for long;
	// the caller's batch fails and is retried instead.
	if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = '5s'"); err != nil {
		return formatError("postgres: create partition", err)
	}
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended('agenttrail.partitions.' || current_schema(), 0))"); err != nil {
		return formatError("postgres: create partition: lock", err)
	}
	var created []string
	for _, d := range missing {
		name := partitionName(d)
		var exists bool
		if err := tx.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", name).Scan(&exists); err != nil {
			return formatError("postgres: create partition "+name, err)
		}
		if exists {
			continue
		}
		from, to := d.Format("2006-01-02 15:04:05+00"), d.AddDate(0, 0, 1).Format("2006-01-02 15:04:05+00")
		ddl := fmt.Sprintf(`CREATE TABLE %[1]s (LIKE events INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
			ALTER TABLE events ATTACH PARTITION %[1]s FOR VALUES FROM ('%[2]s') TO ('%[3]s')`, name, from, to)
		if _, err := tx.Exec(ctx, ddl); err != nil {
			return formatError("postgres: create partition "+name, err)
		}
		created = append(created, name)
	}
	if err := tx.Commit(ctx); err != nil {
		return formatError("postgres: create partition", err)
	}
	for _, d := range missing {
		s.days[d] = true
	}
	if len(created) > 0 {
		s.logger.Info("created partitions", "partitions", created)
	}
	return nil
}
