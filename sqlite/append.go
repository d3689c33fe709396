package sqlite

import (
	"context"
	"database/sql"

	"github.com/agenttrail/agenttrail"
)

const eventColumns = "seq, id, org, time, received_at, duration_ms, actor_type, actor_id, actor_name, source, action, " +
	"resource_type, resource_id, result, status_code, description, project, producer_id, producer_seq, " +
	"trace_id, span_id, parent_span_id, session_id, model, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, cost_usd, metadata, log_index"

type orgID struct{ org, id string }

// Append stores the new events of batch in one transaction and updates the
// rollups in the same transaction. It assigns seq in batch order and leaves
// Seq at 0 for events already stored or repeated in the batch.
//
// Duplicates cost no extra query: repeats within the batch are found in
// memory, and an event already stored is skipped by the insert itself (ON
// CONFLICT DO NOTHING on the (id, org) index the insert probes anyway), which
// reports it as no row changed. Rows are inserted one statement each: a
// multi-row INSERT inside a transaction makes SQLite keep a statement
// journal of every page it touches, which costs more than the per-statement
// overhead it saves (measured in bench_test.go).
func (s *Store) Append(ctx context.Context, batch []agenttrail.Event) (agenttrail.AppendResult, error) {
	var res agenttrail.AppendResult
	if len(batch) == 0 {
		return res, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stmts == nil {
		return res, agenttrail.Errorf(agenttrail.EUNAVAILABLE, "sqlite: store is closed")
	}
	if err := s.compact(ctx); err != nil {
		// Only reads get slower until the next batch retries.
		s.logger.Warn("cannot fold hourly rollups into days", "err", err)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return res, formatError("append: begin", err)
	}
	defer tx.Rollback()
	last, err := s.readState(ctx, tx)
	if err != nil {
		return res, formatError("append: read state", err)
	}
	ins, err := s.stmt(ctx, tx, insertSQL)
	if err != nil {
		return res, formatError("append: prepare", err)
	}
	// The driver starts a goroutine to watch a cancellable context on every
	// statement; per row that would cost more than the insert. Rows run
	// without it and the loop checks ctx itself.
	rowCtx := context.WithoutCancel(ctx)
	seen := make(map[orgID]struct{}, len(batch))
	delta := make(rollupDelta, 64)
	tree := newTrees(rowCtx, tx)
	for i := range batch {
		if i%256 == 255 && ctx.Err() != nil {
			return agenttrail.AppendResult{}, s.undo(batch, formatError("append", ctx.Err()))
		}
		e := &batch[i]
		e.Seq = 0
		k := orgID{e.Org, e.ID}
		if _, dup := seen[k]; dup {
			continue
		}
		seen[k] = struct{}{}
		e.Seq = last + 1
		if !s.noTree {
			t, err := tree.of(e.Org)
			if err != nil {
				return agenttrail.AppendResult{}, s.undo(batch, formatError("append: tree", err))
			}
			e.LogIndex = new(t.Size())
		}
		s.args = appendEventArgs(s.args[:0], e)
		r, err := ins.ExecContext(rowCtx, s.args...)
		if err != nil {
			return agenttrail.AppendResult{}, s.undo(batch, formatError("append: insert", err))
		}
		if n, err := r.RowsAffected(); err != nil || n == 0 {
			e.Seq, e.LogIndex = 0, nil // stored by an earlier batch
			continue
		}
		// The leaf, in the same transaction: an event is never stored
		// without it.
		if e.LogIndex != nil {
			if err := tree.add(e); err != nil {
				return agenttrail.AppendResult{}, s.undo(batch, formatError("append: tree", err))
			}
		}
		last++
		res.Inserted++
		row := rowOf(e)
		delta.add(&row, 1)
	}
	if err := delta.write(rowCtx, s, tx); err != nil {
		return agenttrail.AppendResult{}, s.undo(batch, formatError("append: rollups", err))
	}
	insHashes, err := s.stmt(ctx, tx, insertHashesSQL)
	if err != nil {
		return agenttrail.AppendResult{}, s.undo(batch, formatError("append: prepare", err))
	}
	if err := tree.write(insHashes); err != nil {
		return agenttrail.AppendResult{}, s.undo(batch, formatError("append: tree", err))
	}
	if err := tx.Commit(); err != nil {
		return agenttrail.AppendResult{}, s.undo(batch, formatError("append: commit", err))
	}
	res.Duplicates = len(batch) - res.Inserted
	return res, nil
}

// readState reads, in a write transaction, the last seq and days_until.
func (s *Store) readState(ctx context.Context, tx *sql.Tx) (last int64, err error) {
	err = tx.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0),
		coalesce((SELECT value FROM meta WHERE name = 'days_until'), 0) FROM events`).Scan(&last, &s.daysUntil)
	return last, err
}

// undo clears the seqs and leaf indexes of a batch whose transaction did
// not commit.
func (s *Store) undo(batch []agenttrail.Event, err error) error {
	for i := range batch {
		batch[i].Seq, batch[i].LogIndex = 0, nil
	}
	return err
}

const insertSQL = "INSERT INTO events (" + eventColumns + ") VALUES (" +
	"?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (id, org) DO NOTHING"

func appendEventArgs(args []any, e *agenttrail.Event) []any {
	l, _ := e.LLM()
	var cost any
	if l.CostUSD != nil {
		cost = *l.CostUSD
	}
	var meta any
	if len(e.Metadata) > 0 {
		meta = string(e.Metadata)
	}
	return append(args, e.Seq, e.ID, e.Org, e.Time.UnixNano(), nanos(e.ReceivedAt), e.DurationMS,
		string(e.ActorType), e.ActorID, e.ActorName, e.Source, e.Action, e.ResourceType, e.ResourceID,
		string(e.Result), e.StatusCode, e.Description, e.Project, e.ProducerID, e.ProducerSeq,
		e.TraceID, e.SpanID, e.ParentSpanID, e.SessionID, l.Model, l.InputTokens, l.OutputTokens, l.CacheReadTokens, l.CacheWriteTokens, l.ReasoningTokens, cost, meta,
		e.LogIndex)
}
