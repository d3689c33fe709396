package sqlite

import (
	"context"

	"github.com/agenttrail/agenttrail/internal/backfill"
)

// backfillChunk bounds the events one backfill transaction numbers (a
// variable so TestBackfill can cross chunks with few events).
var backfillChunk = 5000

// backfill gives the events stored before the integrity migration their
// leaves, oldest first, in transactions of backfillChunk events, before the
// store takes any Append: they come first in their orgs' trees, in commit
// order, as if the tree had always been kept. The partial index
// events_unlogged finds them, and is empty (so this costs one probe)
// once they are done.
func (s *Store) backfill(ctx context.Context) error {
	return backfill.Run(ctx, backfillChunk, s.backfillChunk, s.logger)
}

func (s *Store) backfillChunk(ctx context.Context) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.wr
	if _, err := w.begin.exec(); err != nil {
		return 0, formatError("backfill: begin", err)
	}
	committed := false
	defer func() {
		if !committed {
			w.rollback.exec()
		}
	}()
	// Read through s.w, which sees what w's transaction sees: w has
	// written nothing yet, and holds the write lock.
	rows, err := s.w.QueryContext(ctx, "SELECT "+selectColumns+" FROM events WHERE log_index IS NULL ORDER BY seq LIMIT ?", backfillChunk)
	if err != nil {
		return 0, formatError("backfill", err)
	}
	events, err := scanEvents(rows, backfillChunk)
	if err != nil {
		return 0, formatError("backfill", err)
	}
	if len(events) == 0 {
		return 0, nil
	}
	tree := newTrees(w)
	set, err := w.c.prepare("UPDATE events SET log_index = ? WHERE seq = ?")
	if err != nil {
		return 0, formatError("backfill", err)
	}
	defer set.close()
	for i := range events {
		e := &events[i]
		o, err := tree.of(e.Org)
		if err != nil {
			return 0, formatError("backfill: tree", err)
		}
		e.LogIndex = new(o.next)
		if err := tree.add(e); err != nil {
			return 0, formatError("backfill: tree", err)
		}
		set.int64(1, *e.LogIndex)
		set.int64(2, e.Seq)
		if _, err := set.exec(); err != nil {
			return 0, formatError("backfill", err)
		}
	}
	if err := tree.write(); err != nil {
		return 0, formatError("backfill: tree", err)
	}
	if _, err := w.commit.exec(); err != nil {
		return 0, formatError("backfill: commit", err)
	}
	committed = true
	s.ckpt.committed()
	return len(events), nil
}
