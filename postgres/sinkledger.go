package postgres

import (
	"context"
	"time"

	"github.com/agenttrail/agenttrail"
)

var _ agenttrail.SinkLedger = (*Store)(nil)

// Checkpoint implements agenttrail.SinkLedger.
func (s *Store) Checkpoint(ctx context.Context, sink string) (int64, error) {
	var seq int64
	err := s.pool.QueryRow(ctx, `SELECT coalesce((SELECT seq FROM sink_checkpoints WHERE sink = $1), 0)`, sink).Scan(&seq)
	return seq, formatError("checkpoint", err)
}

// SetCheckpoint implements agenttrail.SinkLedger.
func (s *Store) SetCheckpoint(ctx context.Context, sink string, seq int64) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO sink_checkpoints (sink, seq, updated) VALUES ($1, $2, now())
		ON CONFLICT (sink) DO UPDATE SET seq = excluded.seq, updated = excluded.updated`, sink, seq)
	return formatError("set checkpoint", err)
}

// HeadSeq implements agenttrail.SinkLedger: the seq counter holds the last
// seq committed (an Append holds its row lock until it commits, and a
// reader sees the committed value without waiting).
func (s *Store) HeadSeq(ctx context.Context) (int64, error) {
	var seq int64
	err := s.pool.QueryRow(ctx, `SELECT last_seq FROM seq_counter`).Scan(&seq)
	return seq, formatError("head seq", err)
}

// AddDeadLetters implements agenttrail.SinkLedger.
func (s *Store) AddDeadLetters(ctx context.Context, sink string, letters []agenttrail.DeadLetter) error {
	if len(letters) == 0 {
		return nil
	}
	n := len(letters)
	seqs, ids, orgs, reasons, times, events := make([]int64, n), make([]string, n), make([]string, n), make([]string, n), make([]time.Time, n), make([][]byte, n)
	for i, l := range letters {
		seqs[i], ids[i], orgs[i], reasons[i], times[i], events[i] = l.Seq, l.EventID, l.Org, l.Reason, l.Time, l.Event
		if times[i].IsZero() {
			times[i] = time.Now()
		}
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO sink_dead_letters (sink, seq, event_id, org, reason, time, event)
		SELECT $1, * FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::bytea[])`,
		sink, seqs, ids, orgs, reasons, times, events)
	return formatError("add dead letters", err)
}

// DeadLetters implements agenttrail.SinkLedger.
func (s *Store) DeadLetters(ctx context.Context, sink string, afterID int64, limit int) ([]agenttrail.DeadLetter, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, seq, event_id, org, reason, time, event FROM sink_dead_letters
		WHERE sink = $1 AND id > $2 ORDER BY id LIMIT $3`, sink, afterID, limit)
	if err != nil {
		return nil, formatError("dead letters", err)
	}
	defer rows.Close()
	var out []agenttrail.DeadLetter
	for rows.Next() {
		var l agenttrail.DeadLetter
		if err := rows.Scan(&l.ID, &l.Seq, &l.EventID, &l.Org, &l.Reason, &l.Time, &l.Event); err != nil {
			return nil, formatError("dead letters", err)
		}
		l.Time = l.Time.UTC()
		out = append(out, l)
	}
	return out, formatError("dead letters", rows.Err())
}

// DeleteDeadLetters implements agenttrail.SinkLedger.
func (s *Store) DeleteDeadLetters(ctx context.Context, sink string, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := s.pool.Exec(ctx, `DELETE FROM sink_dead_letters WHERE sink = $1 AND id = ANY($2)`, sink, ids)
	return formatError("delete dead letters", err)
}

// CountDeadLetters implements agenttrail.SinkLedger.
func (s *Store) CountDeadLetters(ctx context.Context, sink string) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM sink_dead_letters WHERE sink = $1`, sink).Scan(&n)
	return n, formatError("count dead letters", err)
}
