package postgres

import (
	"context"
	"fmt"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/internal/backfill"
	"github.com/jackc/pgx/v5"
)

// backfillChunk bounds the events one backfill transaction numbers.
const backfillChunk = 5000

// backfill gives the events stored before the integrity migration their
// leaves, oldest first, in transactions of backfillChunk events, before the
// store takes any Append: they come first in their orgs' trees, in commit
// order, as if the trees had always been kept. The partial index
// events_unlogged finds them, and is empty once they are done.
func (s *Store) backfill(ctx context.Context) error {
	if err := backfill.Run(ctx, backfillChunk, s.backfillChunk, s.logger); err != nil {
		return formatError("postgres: backfill tree", err)
	}
	return nil
}

func (s *Store) backfillChunk(ctx context.Context) (int, error) {
	if err := s.lockWriter(ctx); err != nil {
		return 0, err
	}
	defer s.unlockWriter()
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	// The seq counter's row lock: an Append of any process commits after
	// this (its last statement moves the counter), and, having started over,
	// takes its seqs after it.
	if _, err := tx.Exec(ctx, "SELECT last_seq FROM seq_counter FOR UPDATE"); err != nil {
		return 0, err
	}
	rows, err := tx.Query(ctx, "SELECT "+selectColumns+" FROM events WHERE log_index IS NULL ORDER BY seq LIMIT $1", backfillChunk)
	if err != nil {
		return 0, err
	}
	events, err := pgx.CollectRows(rows, scanEvent)
	if err != nil {
		return 0, err
	}
	if len(events) == 0 {
		return 0, nil
	}
	ptrs := make([]*agenttrail.Event, len(events))
	seqs, idx := make([]int64, len(events)), make([]int64, len(events))
	for i := range events {
		ptrs[i] = &events[i]
	}
	leaves, err := leafRows(ctx, tx, ptrs)
	if err != nil {
		return 0, err
	}
	for i, e := range ptrs {
		seqs[i], idx[i] = e.Seq, *e.LogIndex
	}
	if _, err := tx.Exec(ctx, `UPDATE events AS e SET log_index = u.idx FROM unnest($1::bigint[], $2::bigint[]) AS u (seq, idx)
		WHERE e.seq = u.seq AND e.log_index IS NULL`, seqs, idx); err != nil {
		return 0, fmt.Errorf("set log_index: %w", err)
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"tree_hashes"}, []string{"org", "first", "size", "hashes"},
		pgx.CopyFromRows(leaves)); err != nil {
		return 0, fmt.Errorf("copy tree hashes: %w", err)
	}
	return len(events), tx.Commit(ctx)
}
