package sqlite

import (
	"context"
	"database/sql"
	"strings"

	"github.com/agenttrail/agenttrail"
)

const eventColumns = "seq, id, org, time, received_at, duration_ms, actor_type, actor_id, actor_name, source, action, " +
	"resource_type, resource_id, result, status_code, description, project, producer_id, producer_seq, " +
	"model, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, cost_usd, metadata"

const numEventColumns = 27

// Multi-row statement sizes: SQLite binds at most 32766 parameters, and
// larger statements stop paying off well before that.
const (
	insertChunk = 64
	lookupChunk = 256
	upsertChunk = 128
)

type orgID struct{ org, id string }

// Append stores the new events of batch in one transaction and updates the
// rollups in the same transaction. It assigns seq in batch order and leaves
// Seq at 0 for events already stored or repeated in the batch. Duplicates
// are found with one indexed lookup per few hundred events, not per event.
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
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return res, formatError("append: begin", err)
	}
	defer tx.Rollback()

	fresh := make([]int, 0, len(batch))
	seen := make(map[orgID]struct{}, len(batch))
	for i := range batch {
		batch[i].Seq = 0
		k := orgID{batch[i].Org, batch[i].ID}
		if _, dup := seen[k]; dup {
			continue
		}
		seen[k] = struct{}{}
		fresh = append(fresh, i)
	}
	if fresh, err = s.dropStored(ctx, tx, batch, fresh, seen); err != nil {
		return res, formatError("append: find duplicates", err)
	}
	var last int64
	if err := tx.QueryRowContext(ctx, "SELECT coalesce(max(seq), 0) FROM events").Scan(&last); err != nil {
		return res, formatError("append: read seq", err)
	}
	delta := make(rollupDelta, len(fresh))
	for _, i := range fresh {
		last++
		batch[i].Seq = last
		r := rowOf(&batch[i])
		delta.add(&r, 1)
	}
	if err := s.insert(ctx, tx, batch, fresh); err != nil {
		return res, s.undo(batch, formatError("append: insert", err))
	}
	if err := delta.write(ctx, s, tx); err != nil {
		return res, s.undo(batch, formatError("append: rollups", err))
	}
	if err := tx.Commit(); err != nil {
		return res, s.undo(batch, formatError("append: commit", err))
	}
	res.Inserted = len(fresh)
	res.Duplicates = len(batch) - len(fresh)
	return res, nil
}

// undo clears the seqs of a batch whose transaction did not commit.
func (s *Store) undo(batch []agenttrail.Event, err error) error {
	for i := range batch {
		batch[i].Seq = 0
	}
	return err
}

// dropStored removes from fresh the events whose (org, id) is already
// stored, looking ids up a chunk at a time through the (id, org) index.
func (s *Store) dropStored(ctx context.Context, tx *sql.Tx, batch []agenttrail.Event, fresh []int, seen map[orgID]struct{}) ([]int, error) {
	stored := map[orgID]struct{}{}
	for rest := fresh; len(rest) > 0; {
		n := chunkSize(len(rest), lookupChunk)
		st, err := s.stmt(ctx, tx, lookupSQL(n))
		if err != nil {
			return nil, err
		}
		args := s.args[:0]
		for _, i := range rest[:n] {
			args = append(args, batch[i].ID)
		}
		s.args = args
		rows, err := st.QueryContext(ctx, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var k orgID
			if err := rows.Scan(&k.id, &k.org); err != nil {
				rows.Close()
				return nil, err
			}
			if _, ok := seen[k]; ok {
				stored[k] = struct{}{}
			}
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
		rest = rest[n:]
	}
	if len(stored) == 0 {
		return fresh, nil
	}
	out := fresh[:0]
	for _, i := range fresh {
		if _, ok := stored[orgID{batch[i].Org, batch[i].ID}]; !ok {
			out = append(out, i)
		}
	}
	return out, nil
}

// insert writes the events batch[fresh...] with multi-row INSERTs.
func (s *Store) insert(ctx context.Context, tx *sql.Tx, batch []agenttrail.Event, fresh []int) error {
	for rest := fresh; len(rest) > 0; {
		n := chunkSize(len(rest), insertChunk)
		st, err := s.stmt(ctx, tx, insertSQL(n))
		if err != nil {
			return err
		}
		args := s.args[:0]
		for _, i := range rest[:n] {
			args = appendEventArgs(args, &batch[i])
		}
		s.args = args
		if _, err := st.ExecContext(ctx, args...); err != nil {
			return err
		}
		rest = rest[n:]
	}
	return nil
}

func lookupSQL(n int) string {
	return "SELECT id, org FROM events WHERE id IN (" + strings.TrimSuffix(strings.Repeat("?,", n), ",") + ")"
}

func insertSQL(n int) string {
	var b strings.Builder
	b.WriteString("INSERT INTO events (" + eventColumns + ") VALUES ")
	placeholders(&b, n, numEventColumns)
	return b.String()
}

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
		l.Model, l.InputTokens, l.OutputTokens, l.CacheReadTokens, l.CacheWriteTokens, l.ReasoningTokens, cost, meta)
}
