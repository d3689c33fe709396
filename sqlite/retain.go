package sqlite

import (
	"context"
	"time"

	"github.com/agenttrail/agenttrail"
)

// DeleteBefore deletes the events with time before t, oldest first, in
// transactions of at most s.deleteChunk events, each of which subtracts the
// deleted events from the rollups (exactly: counts and nano-dollar costs
// are integers) and drops rollup rows that fall to zero. Appends run
// between chunks, so retention never holds the writer for long.
func (s *Store) DeleteBefore(ctx context.Context, t time.Time) (int64, error) {
	var total int64
	for {
		n, err := s.deleteChunkBefore(ctx, t)
		total += n
		if err != nil {
			return total, err
		}
		if n < int64(s.deleteChunk) {
			if total > 0 {
				s.logger.Info("deleted old events", "before", t, "events", total)
			}
			return total, nil
		}
	}
}

func (s *Store) deleteChunkBefore(ctx context.Context, t time.Time) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stmts == nil {
		return 0, agenttrail.Errorf(agenttrail.EUNAVAILABLE, "sqlite: store is closed")
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, formatError("delete: begin", err)
	}
	defer tx.Rollback()
	if _, err := s.readState(ctx, tx); err != nil {
		return 0, formatError("delete: read state", err)
	}
	rows, err := tx.QueryContext(ctx, `DELETE FROM events WHERE seq IN (
			SELECT seq FROM events WHERE time < ? ORDER BY time LIMIT ?)
		RETURNING org, project, time, source, actor_type, actor_id, result, action, resource_type, model,
			input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens,
			CAST(round(coalesce(cost_usd, 0) * 1e9) AS INTEGER)`, t.UnixNano(), s.deleteChunk)
	if err != nil {
		return 0, formatError("delete", err)
	}
	delta := rollupDelta{}
	var n int64
	for rows.Next() {
		var r row
		var tm int64
		if err := rows.Scan(&r.org, &r.project, &tm, &r.dims[dimSource], &r.dims[dimActorType], &r.dims[dimActorID],
			&r.dims[dimResult], &r.dims[dimAction], &r.dims[dimResourceType], &r.dims[dimModel],
			&r.use.input, &r.use.output, &r.use.cacheRead, &r.use.cacheWrite, &r.use.reasoning, &r.use.costNUSD); err != nil {
			rows.Close()
			return 0, formatError("delete", err)
		}
		r.hour, r.use.count = hourOf(tm), 1
		delta.add(&r, -1)
		n++
	}
	if err := rows.Close(); err != nil {
		return 0, formatError("delete", err)
	}
	if n == 0 {
		return 0, nil
	}
	if err := delta.write(context.WithoutCancel(ctx), s, tx); err != nil {
		return 0, formatError("delete: rollups", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, formatError("delete: commit", err)
	}
	return n, nil
}
