package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/agenttrail/agenttrail"
)

// DeleteBefore deletes every event with time before t and returns how many.
// In one transaction it drops the day partitions that end at or before t,
// deletes the rows before t of the day t falls in, deletes their ids, drops
// the rollups of the hours before t and recomputes the hour t falls in from
// the events that remain, so rollups and events always agree. It holds the
// writer slot, so Appends wait for it; dropping partitions keeps that short.
func (s *Store) DeleteBefore(ctx context.Context, t time.Time) (int64, error) {
	if err := s.lockWriter(ctx); err != nil {
		return 0, err
	}
	defer s.unlockWriter()
	t = ceilMicro(t.UTC()) // times are stored in microseconds: see timeRange
	n, dropped, err := s.deleteBefore(ctx, t)
	if err != nil {
		return 0, formatError("postgres: delete before", err)
	}
	s.partMu.Lock()
	for _, d := range dropped {
		delete(s.days, d)
	}
	s.partMu.Unlock()
	if len(dropped) > 0 || n > 0 {
		s.logger.Info("deleted events", "before", t, "events", n, "partitions_dropped", len(dropped))
	}
	return n, nil
}

func (s *Store) deleteBefore(ctx context.Context, t time.Time) (int64, []time.Time, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, nil, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	// DROP TABLE on a partition needs an ACCESS EXCLUSIVE lock on events:
	// it waits for running queries, and new ones queue behind it. The wait
	// is short so a long export makes retention fail (EUNAVAILABLE) and be
	// retried later, rather than stall every reader.
	if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = '2s'"); err != nil {
		return 0, nil, err
	}
	// The seq counter's row lock: an Append of any process commits after
	// this (its last statement moves the counter), and, having started over,
	// takes its seqs after it.
	if _, err := tx.Exec(ctx, "SELECT last_seq FROM seq_counter FOR UPDATE"); err != nil {
		return 0, nil, fmt.Errorf("lock: %w", err)
	}
	days, err := s.partitions(ctx, tx)
	if err != nil {
		return 0, nil, err
	}
	var whole []time.Time
	for _, d := range days {
		if !d.AddDate(0, 0, 1).After(t) {
			whole = append(whole, d)
		}
	}
	var n int64
	for _, d := range whole {
		var c int64
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM "+partitionName(d)).Scan(&c); err != nil {
			return 0, nil, fmt.Errorf("count %s: %w", partitionName(d), err)
		}
		n += c
	}
	// Rows before t in the day t falls in; the earlier days are dropped.
	if tag, err := tx.Exec(ctx, "DELETE FROM events WHERE time >= $1 AND time < $2", day(t), t); err != nil {
		return 0, nil, fmt.Errorf("delete events: %w", err)
	} else {
		n += tag.RowsAffected()
	}
	if _, err := tx.Exec(ctx, "DELETE FROM event_ids WHERE time < $1", t); err != nil {
		return 0, nil, fmt.Errorf("delete ids: %w", err)
	}
	// Whole hours and days before t go; the hour t cuts through is rebuilt
	// from the events it keeps (exact, where subtracting float sums is
	// not), and the day t cuts through from its hours.
	hour, d := t.Truncate(time.Hour), day(t)
	if _, err := tx.Exec(ctx, "DELETE FROM rollups_hourly WHERE start < $1", hour); err != nil {
		return 0, nil, fmt.Errorf("delete rollups: %w", err)
	}
	if _, err := tx.Exec(ctx, "DELETE FROM rollups_daily WHERE start < $1", d); err != nil {
		return 0, nil, fmt.Errorf("delete rollups: %w", err)
	}
	if hour.Before(t) {
		if err := recomputeHour(ctx, tx, hour); err != nil {
			return 0, nil, err
		}
	}
	if d.Before(t) {
		if err := recomputeDay(ctx, tx, d); err != nil {
			return 0, nil, err
		}
	}
	if len(whole) > 0 {
		names := make([]string, len(whole))
		for i, d := range whole {
			names[i] = partitionName(d)
		}
		if _, err := tx.Exec(ctx, "DROP TABLE "+strings.Join(names, ", ")); err != nil {
			return 0, nil, fmt.Errorf("drop partitions: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, nil, fmt.Errorf("commit: %w", err)
	}
	return n, whole, nil
}

// deleteRulesChunk bounds the events one transaction of DeleteByRules
// deletes: the writer slot is released between chunks, so Appends wait for
// one chunk at most.
const deleteRulesChunk = 20000

// DeleteByRules deletes what rules say, oldest first, in transactions of at
// most deleteRulesChunk events. Each transaction deletes the events and
// their ids, then rebuilds the hourly rollups of every hour it deleted from
// out of the events that remain, and the daily rollups of those days from
// their hours, as DeleteBefore does for the hour its cutoff cuts through:
// exact, where subtracting float sums is not. Partitions are never dropped
// here: a rule deletes some of a day's events, not the day.
func (s *Store) DeleteByRules(ctx context.Context, rules []agenttrail.RetentionRule, maxSeq int64) ([]int64, error) {
	counts := make([]int64, len(rules))
	if err := agenttrail.CheckRetentionRules(rules); err != nil {
		return counts, err
	}
	var total int64
	for {
		n, err := s.deleteRulesOnce(ctx, rules, maxSeq, counts)
		total += n
		if err != nil {
			return counts, formatError("postgres: delete by rules", err)
		}
		if n < deleteRulesChunk {
			break
		}
	}
	if total > 0 {
		s.logger.Info("deleted events by retention rules", "events", total, "per_rule", counts)
	}
	return counts, nil
}

func (s *Store) deleteRulesOnce(ctx context.Context, rules []agenttrail.RetentionRule, maxSeq int64, counts []int64) (int64, error) {
	var a args
	var when, which []string
	var latest time.Time
	for i, r := range rules {
		m := "true"
		if c := conditions(r.Filter, &a); len(c) > 0 {
			m = "(" + strings.Join(c, " AND ") + ")"
		}
		which = append(which, "WHEN "+m+" THEN "+strconv.Itoa(i))
		if r.Before.IsZero() {
			when = append(when, "WHEN "+m+" THEN false")
			continue
		}
		cut := ceilMicro(r.Before.UTC()) // times are stored in microseconds: see timeRange
		when = append(when, "WHEN "+m+" THEN time < "+a.add(cut))
		if cut.After(latest) {
			latest = cut
		}
	}
	if latest.IsZero() {
		return 0, nil
	}
	if err := s.lockWriter(ctx); err != nil {
		return 0, err
	}
	defer s.unlockWriter()
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	// The seq counter's row lock: an Append of any process commits after
	// this (its last statement moves the counter), and, having started over,
	// takes its seqs after it.
	if _, err := tx.Exec(ctx, "SELECT last_seq FROM seq_counter FOR UPDATE"); err != nil {
		return 0, fmt.Errorf("lock: %w", err)
	}
	sql := `WITH d AS (
			DELETE FROM events WHERE (time, seq) IN (
				SELECT time, seq FROM events
				WHERE seq <= ` + a.add(maxSeq) + ` AND time < ` + a.add(latest) + ` AND CASE ` + strings.Join(when, " ") + ` ELSE false END
				ORDER BY time LIMIT ` + a.add(deleteRulesChunk) + `)
			RETURNING id, org, time, CASE ` + strings.Join(which, " ") + ` ELSE -1 END AS rule),
		ids AS (DELETE FROM event_ids AS x USING d WHERE x.id = d.id AND x.org = d.org)
		SELECT rule, to_timestamp(floor(extract(epoch FROM time) / 3600) * 3600) AS hour, count(*)
		FROM d GROUP BY 1, 2`
	rows, err := tx.Query(ctx, sql, a...)
	if err != nil {
		return 0, fmt.Errorf("delete events: %w", err)
	}
	chunk := make([]int64, len(counts))
	hours := map[time.Time]bool{}
	var n int64
	for rows.Next() {
		var rule, c int64
		var hour time.Time
		if err := rows.Scan(&rule, &hour, &c); err != nil {
			rows.Close()
			return 0, fmt.Errorf("delete events: %w", err)
		}
		if rule >= 0 && rule < int64(len(chunk)) {
			chunk[rule] += c
		}
		hours[hour.UTC()] = true
		n += c
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("delete events: %w", err)
	}
	days := map[time.Time]bool{}
	for h := range hours {
		if err := recomputeHour(ctx, tx, h); err != nil {
			return 0, err
		}
		days[day(h)] = true
	}
	for d := range days {
		if err := recomputeDay(ctx, tx, d); err != nil {
			return 0, err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("commit: %w", err)
	}
	for i, c := range chunk {
		counts[i] += c
	}
	return n, nil
}

// recomputeHour rebuilds the hourly rollups of one hour from its events,
// in one scan for every dimension.
func recomputeHour(ctx context.Context, tx pgx.Tx, hour time.Time) error {
	if _, err := tx.Exec(ctx, "DELETE FROM rollups_hourly WHERE start = $1", hour); err != nil {
		return fmt.Errorf("recompute rollups: %w", err)
	}
	var a args
	from, to := a.add(hour), a.add(hour.Add(time.Hour))
	dims := []string{"(" + a.add(dimTotal) + "::text, ''::text)"}
	for _, d := range rolledUp() {
		dims = append(dims, "("+a.add(string(d))+"::text, e."+dimColumn(d)+")")
	}
	sql := `INSERT INTO rollups_hourly (dim, start, org, project, key, count, input_tokens, output_tokens,
			cache_read_tokens, cache_write_tokens, reasoning_tokens, cost_usd)
		SELECT d.dim, ` + from + `::timestamptz, e.org, e.project, d.key, count(*), ` + tokenSums("e.") + `,
			coalesce(sum(e.cost_usd), 0)
		FROM events AS e CROSS JOIN LATERAL (VALUES ` + strings.Join(dims, ", ") + `) AS d (dim, key)
		WHERE e.time >= ` + from + ` AND e.time < ` + to + `
		GROUP BY d.dim, e.org, e.project, d.key`
	if _, err := tx.Exec(ctx, sql, a...); err != nil {
		return fmt.Errorf("recompute rollups: %w", err)
	}
	return nil
}

// recomputeDay rebuilds the daily rollups of one day from its hourly ones.
func recomputeDay(ctx context.Context, tx pgx.Tx, d time.Time) error {
	if _, err := tx.Exec(ctx, "DELETE FROM rollups_daily WHERE start = $1", d); err != nil {
		return fmt.Errorf("recompute daily rollups: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO rollups_daily (dim, start, org, project, key, count, input_tokens,
			output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, cost_usd)
		SELECT dim, $1::timestamptz, org, project, key, `+satSum("count")+`, `+tokenSums("")+`, sum(cost_usd)
		FROM rollups_hourly WHERE start >= $1 AND start < $2
		GROUP BY dim, org, project, key`, d, d.AddDate(0, 0, 1)); err != nil {
		return fmt.Errorf("recompute daily rollups: %w", err)
	}
	return nil
}
