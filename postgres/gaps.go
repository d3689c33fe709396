package postgres

import (
	"context"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/jackc/pgx/v5"
)

// HeartbeatGaps finds heartbeat gaps as agenttrail.HeartbeatScan defines
// them, from the heartbeats and stops in f's range, read in producer and
// time order. interval 0 judges each heartbeat by the interval it states.
func (s *Store) HeartbeatGaps(ctx context.Context, f agenttrail.Filter, interval time.Duration) ([]agenttrail.HeartbeatGap, error) {
	if err := f.Check(); err != nil {
		return nil, err
	}
	if interval < 0 {
		return nil, agenttrail.Invalid("interval", "must not be negative")
	}
	until := f.Until
	if until.IsZero() {
		until = s.now()
	}
	until = until.UTC()
	var a args
	c := append(conditions(f, &a), "source = 'agent'", "action IN ('heartbeat', 'stop')")
	if f.Until.IsZero() {
		c = append(c, "time < "+a.add(until))
	}
	rows, err := s.pool.Query(ctx, `SELECT org, actor_id, producer_id, time, action = 'stop', metadata FROM events`+
		whereClause(c)+` ORDER BY org, actor_id, producer_id, time, seq`, a...)
	if err != nil {
		return nil, formatError("postgres: heartbeat gaps", err)
	}
	scan := agenttrail.HeartbeatScan{Until: until, Interval: interval}
	var (
		b    agenttrail.Beat
		meta []byte
	)
	_, err = pgx.ForEachRow(rows, []any{&b.Org, &b.ActorID, &b.ProducerID, &b.Time, &b.Stop, &meta}, func() error {
		b.Interval = agenttrail.HeartbeatIntervalOf(meta)
		scan.Add(b)
		return nil
	})
	if err != nil {
		return nil, formatError("postgres: heartbeat gaps", err)
	}
	return scan.Gaps(), nil
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
