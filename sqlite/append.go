package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/agenttrail/agenttrail"
)

const eventColumns = "seq, id, org, time, received_at, duration_ms, actor_type, actor_id, actor_name, source, action, " +
	"resource_type, resource_id, result, status_code, description, project, producer_id, producer_seq, " +
	"trace_id, span_id, parent_span_id, session_id, model, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, cost_usd, metadata, log_index"

// writer is the connection Append writes through (see rawConn) and its
// prepared statements. It is owned by Store.mu. Whatever is written often
// goes through it too (checkpoints): a write on another connection makes
// this one drop its whole page cache at its next transaction, and reread
// the right edges of every index.
type writer struct {
	c                                    *rawConn
	begin, commit, rollback              *rawStmt
	state, treeSize, readHash            *rawStmt
	insert, insertHashes, upsert, upDays *rawStmt
	addCheckpoint                        *rawStmt
}

func openWriter(path, synchronous string) (*writer, error) {
	c, err := openRaw(path,
		"PRAGMA busy_timeout = 10000", "PRAGMA cache_size = -32000", "PRAGMA temp_store = MEMORY",
		"PRAGMA synchronous = "+synchronous, fmt.Sprintf("PRAGMA wal_autocheckpoint = %d", walFramesLimit))
	if err != nil {
		return nil, err
	}
	w := &writer{c: c}
	for _, p := range []struct {
		st **rawStmt
		q  string
	}{
		{&w.begin, "BEGIN IMMEDIATE"}, {&w.commit, "COMMIT"}, {&w.rollback, "ROLLBACK"},
		{&w.state, stateSQL}, {&w.treeSize, treeSizeSQL}, {&w.readHash, readHashSQL},
		{&w.insert, insertSQL}, {&w.insertHashes, insertHashesSQL}, {&w.upsert, upsertSQL}, {&w.upDays, upsertDaySQL},
		{&w.addCheckpoint, addCheckpointSQL},
	} {
		if *p.st, err = c.prepare(p.q); err != nil {
			w.close()
			return nil, err
		}
	}
	return w, nil
}

func (w *writer) close() {
	for _, st := range []*rawStmt{w.begin, w.commit, w.rollback, w.state, w.treeSize, w.readHash,
		w.insert, w.insertHashes, w.upsert, w.upDays, w.addCheckpoint} {
		st.close()
	}
	w.c.close()
}

// Append stores the new events of batch in one transaction and updates the
// rollups in the same transaction. It assigns seq in batch order and leaves
// Seq at 0 for events already stored or repeated in the batch.
//
// Duplicates cost no extra query: an event already stored, by an earlier
// batch or earlier in this one, is skipped by the insert itself (ON CONFLICT
// DO NOTHING on the (id, org) index the insert probes anyway), which reports
// it as no row changed. Rows are inserted one statement each: a
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
	if err := ctx.Err(); err != nil {
		return res, formatError("append", err)
	}
	w := s.wr
	if _, err := w.begin.exec(); err != nil {
		return res, formatError("append: begin", err)
	}
	committed := false
	defer func() {
		if !committed {
			w.rollback.exec()
		}
	}()
	last, err := s.readStateRaw(w)
	if err != nil {
		return res, formatError("append: read state", err)
	}
	tree := newTrees(w)
	logIndex := make([]int64, len(batch)) // what the events' LogIndex point to
	side := newSideWork(batch)
	defer side.stop()
	for i := range batch {
		side.ready(i)
		if i%256 == 255 && ctx.Err() != nil {
			side.stop()
			return agenttrail.AppendResult{}, s.undo(batch, formatError("append", ctx.Err()))
		}
		e := &batch[i]
		e.Seq = last + 1
		var o *orgTree
		if !s.noTree {
			if o, err = tree.of(e.Org); err != nil {
				side.stop()
				return agenttrail.AppendResult{}, s.undo(batch, formatError("append: tree", err))
			}
			logIndex[i] = o.next
			e.LogIndex = &logIndex[i]
		}
		bindEvent(w.insert, e)
		n, err := w.insert.exec()
		if err != nil {
			side.stop()
			return agenttrail.AppendResult{}, s.undo(batch, formatError("append: insert", err))
		}
		if n == 0 {
			e.Seq, e.LogIndex = 0, nil // stored already
			continue
		}
		// The leaf is appended by side, in the same transaction: an event
		// is never stored without it.
		if o != nil {
			side.apps[i] = o.a
			o.next++
		}
		last++
		res.Inserted++
	}
	delta, err := side.finish()
	if err != nil {
		return agenttrail.AppendResult{}, s.undo(batch, formatError("append: tree", err))
	}
	if err := delta.writeRaw(w, s.daysUntil); err != nil {
		return agenttrail.AppendResult{}, s.undo(batch, formatError("append: rollups", err))
	}
	if err := tree.write(); err != nil {
		return agenttrail.AppendResult{}, s.undo(batch, formatError("append: tree", err))
	}
	if _, err := w.commit.exec(); err != nil {
		return agenttrail.AppendResult{}, s.undo(batch, formatError("append: commit", err))
	}
	committed = true
	s.ckpt.committed()
	res.Duplicates = len(batch) - res.Inserted
	return res, nil
}

const stateSQL = `SELECT coalesce(max(seq), 0),
	coalesce((SELECT value FROM meta WHERE name = 'days_until'), 0) FROM events`

// readState reads, in a write transaction of s.w, the last seq and
// days_until.
func (s *Store) readState(ctx context.Context, tx *sql.Tx) (last int64, err error) {
	err = tx.QueryRowContext(ctx, stateSQL).Scan(&last, &s.daysUntil)
	return last, err
}

// readStateRaw is readState in w's write transaction.
func (s *Store) readStateRaw(w *writer) (last int64, err error) {
	ok, err := w.state.next()
	if err != nil {
		return 0, err
	}
	if ok {
		last, s.daysUntil = w.state.colInt64(0), w.state.colInt64(1)
		w.state.reset()
	}
	return last, nil
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

// bindEvent binds e's columns, in eventColumns order, to st.
func bindEvent(st *rawStmt, e *agenttrail.Event) {
	l, _ := e.LLM()
	st.reserve(len(e.ID) + len(e.Org) + len(e.ActorType) + len(e.ActorID) + len(e.ActorName) + len(e.Source) +
		len(e.Action) + len(e.ResourceType) + len(e.ResourceID) + len(e.Result) + len(e.Description) + len(e.Project) +
		len(e.ProducerID) + len(e.TraceID) + len(e.SpanID) + len(e.ParentSpanID) + len(e.SessionID) + len(l.Model) + len(e.Metadata))
	st.int64(1, e.Seq)
	st.text(2, e.ID)
	st.text(3, e.Org)
	st.int64(4, e.Time.UnixNano())
	st.int64(5, nanos(e.ReceivedAt))
	st.float(6, e.DurationMS)
	st.text(7, string(e.ActorType))
	st.text(8, e.ActorID)
	st.text(9, e.ActorName)
	st.text(10, e.Source)
	st.text(11, e.Action)
	st.text(12, e.ResourceType)
	st.text(13, e.ResourceID)
	st.text(14, string(e.Result))
	st.int64(15, int64(e.StatusCode))
	st.text(16, e.Description)
	st.text(17, e.Project)
	st.text(18, e.ProducerID)
	st.int64(19, e.ProducerSeq)
	st.text(20, e.TraceID)
	st.text(21, e.SpanID)
	st.text(22, e.ParentSpanID)
	st.text(23, e.SessionID)
	st.text(24, l.Model)
	st.int64(25, l.InputTokens)
	st.int64(26, l.OutputTokens)
	st.int64(27, l.CacheReadTokens)
	st.int64(28, l.CacheWriteTokens)
	st.int64(29, l.ReasoningTokens)
	orNull(st, 30, l.CostUSD, st.float)
	if len(e.Metadata) > 0 {
		st.textBytes(31, e.Metadata)
	} else {
		st.null(31)
	}
	orNull(st, 32, e.LogIndex, st.int64)
}
