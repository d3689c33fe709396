package sqlite

import (
	"context"
	"strings"
	"time"

	"github.com/agenttrail/agenttrail"
)

var _ agenttrail.SinkLedger = (*Store)(nil)

// Checkpoint implements agenttrail.SinkLedger.
func (s *Store) Checkpoint(ctx context.Context, sink string) (int64, error) {
	var seq int64
	err := s.r.QueryRowContext(ctx, `SELECT coalesce((SELECT seq FROM sink_checkpoints WHERE sink = ?), 0)`, sink).Scan(&seq)
	return seq, formatError("checkpoint", err)
}

// SetCheckpoint implements agenttrail.SinkLedger. It takes the writer
// connection like Append, for a moment.
func (s *Store) SetCheckpoint(ctx context.Context, sink string, seq int64) error {
	return s.write(ctx, "set checkpoint", `INSERT INTO sink_checkpoints (sink, seq, updated) VALUES (?, ?, ?)
		ON CONFLICT (sink) DO UPDATE SET seq = excluded.seq, updated = excluded.updated`, sink, seq, time.Now().UnixNano())
}

// HeadSeq implements agenttrail.SinkLedger: seq is the rowid, so max is a
// lookup of the last row.
func (s *Store) HeadSeq(ctx context.Context) (int64, error) {
	var seq int64
	err := s.r.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM events`).Scan(&seq)
	return seq, formatError("head seq", err)
}

// AddDeadLetters implements agenttrail.SinkLedger.
func (s *Store) AddDeadLetters(ctx context.Context, sink string, letters []agenttrail.DeadLetter) error {
	if len(letters) == 0 {
		return nil
	}
	var b strings.Builder
	b.WriteString(`INSERT INTO sink_dead_letters (sink, seq, event_id, org, reason, time, event) VALUES `)
	args := make([]any, 0, 7*len(letters))
	for i, l := range letters {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?, ?, ?, ?, ?)")
		t := l.Time
		if t.IsZero() {
			t = time.Now()
		}
		args = append(args, sink, l.Seq, l.EventID, l.Org, l.Reason, t.UnixNano(), l.Event)
	}
	return s.write(ctx, "add dead letters", b.String(), args...)
}

// DeadLetters implements agenttrail.SinkLedger.
func (s *Store) DeadLetters(ctx context.Context, sink string, afterID int64, limit int) ([]agenttrail.DeadLetter, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, seq, event_id, org, reason, time, event FROM sink_dead_letters
		WHERE sink = ? AND id > ? ORDER BY id LIMIT ?`, sink, afterID, limit)
	if err != nil {
		return nil, formatError("dead letters", err)
	}
	defer rows.Close()
	var out []agenttrail.DeadLetter
	for rows.Next() {
		var l agenttrail.DeadLetter
		var t int64
		if err := rows.Scan(&l.ID, &l.Seq, &l.EventID, &l.Org, &l.Reason, &t, &l.Event); err != nil {
			return nil, formatError("dead letters", err)
		}
		l.Time = time.Unix(0, t).UTC()
		out = append(out, l)
	}
	return out, formatError("dead letters", rows.Err())
}

// DeleteDeadLetters implements agenttrail.SinkLedger.
func (s *Store) DeleteDeadLetters(ctx context.Context, sink string, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	args := []any{sink}
	for _, id := range ids {
		args = append(args, id)
	}
	return s.write(ctx, "delete dead letters", `DELETE FROM sink_dead_letters WHERE sink = ? AND id IN (?`+strings.Repeat(", ?", len(ids)-1)+`)`, args...)
}

// CountDeadLetters implements agenttrail.SinkLedger.
func (s *Store) CountDeadLetters(ctx context.Context, sink string) (int64, error) {
	var n int64
	err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM sink_dead_letters WHERE sink = ?`, sink).Scan(&n)
	return n, formatError("count dead letters", err)
}

// write runs one statement on the writer connection.
func (s *Store) write(ctx context.Context, op, query string, args ...any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stmts == nil {
		return agenttrail.Errorf(agenttrail.EUNAVAILABLE, "sqlite: store is closed")
	}
	_, err := s.w.ExecContext(ctx, query, args...)
	return formatError(op, err)
}
