package postgres

import (
	"context"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/jackc/pgx/v5"
)

// HeartbeatGaps returns, per (org, actor_id), the windows between
// consecutive heartbeats matching f that are more than 1.5 intervals apart,
// and an open window when the last heartbeat is that old at f.Until (now
// when f.Until is zero). A window function pairs each heartbeat with the
// next, so only the gaps leave the database.
func (s *Store) HeartbeatGaps(ctx context.Context, f agenttrail.Filter, interval time.Duration) ([]agenttrail.HeartbeatGap, error) {
	if err := f.Check(); err != nil {
		return nil, err
	}
	if interval <= 0 {
		return nil, agenttrail.Invalid("interval", "must be positive")
	}
	until := f.Until
	if until.IsZero() {
		until = s.now()
	}
	until = until.UTC()
	threshold := interval * 3 / 2
	var a args
	c := append(conditions(f, &a), "source = 'agent'", "action = 'heartbeat'")
	sql := `SELECT org, actor_id, producer_id, time, next FROM (
			SELECT org, actor_id, producer_id, time,
				lead(time) OVER (PARTITION BY org, actor_id ORDER BY time, seq) AS next
			FROM events` + whereClause(c) + `
		) AS h
		WHERE next IS NULL OR next - time > ` + a.add(threshold.Microseconds()) + ` * interval '1 microsecond'
		ORDER BY org, actor_id, time`
	rows, err := s.pool.Query(ctx, sql, a...)
	if err != nil {
		return nil, formatError("postgres: heartbeat gaps", err)
	}
	var (
		gaps []agenttrail.HeartbeatGap
		g    agenttrail.HeartbeatGap
		next *time.Time
	)
	// The last heartbeat of each agent comes back whatever its age: until
	// may hold nanoseconds, so whether the window is open is decided here.
	_, err = pgx.ForEachRow(rows, []any{&g.Org, &g.ActorID, &g.ProducerID, &g.From, &next}, func() error {
		g.From, g.Open = g.From.UTC(), next == nil
		if g.Open {
			g.To = until
			if g.To.Sub(g.From) <= threshold {
				return nil
			}
		} else {
			g.To = next.UTC()
		}
		g.Missed = missed(g.To.Sub(g.From), interval)
		gaps = append(gaps, g)
		return nil
	})
	if err != nil {
		return nil, formatError("postgres: heartbeat gaps", err)
	}
	return gaps, nil
}

// missed returns how many heartbeats were due strictly inside a window of
// length d: those at From + k*interval before To.
func missed(d, interval time.Duration) int64 {
	n := int64(d / interval)
	if d%interval == 0 {
		n--
	}
	return n
}

// SequenceGaps returns, per (org, producer_id), the ranges of producer_seq
// missing between the lowest and highest seen among the events f matches.
// Events without a producer, or with producer_seq 0 (unset), do not count.
func (s *Store) SequenceGaps(ctx context.Context, f agenttrail.Filter) ([]agenttrail.SequenceGap, error) {
	if err := f.Check(); err != nil {
		return nil, err
	}
	var a args
	c := append(conditions(f, &a), "producer_id <> ''", "producer_seq > 0")
	sql := `SELECT org, producer_id, prev + 1, producer_seq - 1 FROM (
			SELECT org, producer_id, producer_seq,
				lag(producer_seq) OVER (PARTITION BY org, producer_id ORDER BY producer_seq) AS prev
			FROM (SELECT DISTINCT org, producer_id, producer_seq FROM events` + whereClause(c) + `) AS d
		) AS s
		WHERE producer_seq - prev > 1
		ORDER BY org, producer_id, producer_seq`
	rows, err := s.pool.Query(ctx, sql, a...)
	if err != nil {
		return nil, formatError("postgres: sequence gaps", err)
	}
	gaps, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (agenttrail.SequenceGap, error) {
		var g agenttrail.SequenceGap
		err := row.Scan(&g.Org, &g.ProducerID, &g.From, &g.To)
		return g, err
	})
	if err != nil {
		return nil, formatError("postgres: sequence gaps", err)
	}
	return gaps, nil
}
