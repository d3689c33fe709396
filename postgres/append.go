package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/mod/sumdb/tlog"
)

// eventColumns are the columns of events, in the order COPY writes them and
// scanEvent reads them.
func eventColumns() []string {
	return []string{
		"time", "seq", "id", "org", "project", "actor_type", "actor_id", "actor_name",
		"source", "action", "resource_type", "resource_id", "result", "status_code",
		"duration_ms", "description", "metadata", "producer_id", "producer_seq", "received_at",
		"model", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
		"reasoning_tokens", "cost_usd", "trace_id", "span_id", "parent_span_id", "session_id",
		"log_index",
	}
}

type idKey struct{ org, id string }

// Append stores the batch in one transaction: it skips events whose (org, id)
// is stored or repeated earlier in the batch, numbers the others in batch
// order from the seq counter, COPYs them and their ids, and updates the
// rollups. Seq is set on the stored events of batch once the transaction has
// committed. Calls are serialized; the counter's row lock also orders the
// commits of writers in other processes.
func (s *Store) Append(ctx context.Context, batch []agenttrail.Event) (agenttrail.AppendResult, error) {
	if len(batch) == 0 {
		return agenttrail.AppendResult{}, nil
	}
	if err := s.lockWriter(ctx); err != nil {
		return agenttrail.AppendResult{}, err
	}
	defer s.unlockWriter()

	fresh := make([]int, 0, len(batch)) // first occurrence of each (org, id)
	seen := make(map[idKey]struct{}, len(batch))
	var days []time.Time
	seenDay := map[time.Time]bool{}
	for i := range batch {
		batch[i].Seq, batch[i].LogIndex = 0, nil
		k := idKey{batch[i].Org, batch[i].ID}
		if _, dup := seen[k]; dup {
			continue
		}
		seen[k] = struct{}{}
		fresh = append(fresh, i)
		// The tree's leaf is of the event as stored, and PostgreSQL keeps
		// microseconds (pgx truncates). Done here, before appendTx's
		// goroutines read the batch.
		e := &batch[i]
		e.Time, e.ReceivedAt = e.Time.Truncate(time.Microsecond), e.ReceivedAt.Truncate(time.Microsecond)
		if d := day(batch[i].Time); !seenDay[d] {
			seenDay[d] = true
			days = append(days, d)
		}
	}
	if err := s.ensurePartitions(ctx, days); err != nil {
		return agenttrail.AppendResult{}, err
	}
	s.ensureAhead(ctx)

	inserted, err := s.appendTx(ctx, batch, fresh)
	if isMissingPartition(err) {
		// Another process dropped a partition this cache still lists:
		// reread the catalog and try once more.
		if err := s.loadPartitions(ctx); err != nil {
			return agenttrail.AppendResult{}, err
		}
		if err := s.ensurePartitions(ctx, days); err != nil {
			return agenttrail.AppendResult{}, err
		}
		inserted, err = s.appendTx(ctx, batch, fresh)
	}
	if err != nil {
		for i := range batch {
			batch[i].Seq, batch[i].LogIndex = 0, nil
		}
		return agenttrail.AppendResult{}, formatError("postgres: append", err)
	}
	return agenttrail.AppendResult{Inserted: inserted, Duplicates: len(batch) - inserted}, nil
}

// ensureAhead creates the partitions of today and the next two days when
// they are missing. Failing is not fatal: the next Append tries again, and a
// batch creates the partitions it needs itself.
func (s *Store) ensureAhead(ctx context.Context) {
	today := day(s.now())
	ahead := []time.Time{today, today.AddDate(0, 0, 1), today.AddDate(0, 0, 2)}
	if err := s.ensurePartitions(ctx, ahead); err != nil {
		s.logger.Warn("cannot create partitions ahead", "err", err)
	}
}

// appendTx writes the new events among batch[fresh] and sets their Seq. It
// returns how many it stored.
func (s *Store) appendTx(ctx context.Context, batch []agenttrail.Event, fresh []int) (int, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit

	// One round trip: the seq counter's row lock, the ids already
	// stored, and the tree sizes of the batch's orgs.
	ptrs := make([]*agenttrail.Event, len(fresh))
	for j, i := range fresh {
		ptrs[j] = &batch[i]
	}
	orgs := orgsOf(ptrs)
	b := &pgx.Batch{}
	b.Queue("SELECT last_seq FROM seq_counter FOR UPDATE")
	queueStoredIDs(b, ptrs)
	if !s.noTree {
		b.Queue(treeSizesSQL, orgs)
	}
	br := tx.SendBatch(ctx, b)
	var last int64
	if err := br.QueryRow().Scan(&last); err != nil {
		br.Close()
		return 0, fmt.Errorf("seq: %w", err)
	}
	stored, err := storedIDs(br)
	if err != nil {
		br.Close()
		return 0, err
	}
	var sizes map[string]int64
	if !s.noTree {
		if sizes, err = scanTreeSizes(br.Query()); err != nil {
			br.Close()
			return 0, err
		}
	}
	if err := br.Close(); err != nil {
		return 0, fmt.Errorf("seq and dedup: %w", err)
	}
	events := make([]*agenttrail.Event, 0, len(fresh))
	for _, i := range fresh {
		e := &batch[i]
		if _, ok := stored[idKey{e.Org, e.ID}]; ok {
			continue
		}
		last++
		e.Seq = last
		events = append(events, e)
	}
	if len(events) == 0 {
		return 0, nil
	}
	// The rollups are summed, and the leaves hashed, while PostgreSQL
	// takes the COPYs. Both goroutines are waited for before returning, so
	// a retry never writes the batch while one still reads it.
	type sums struct{ hourly, daily rollupRows }
	rollups := make(chan sums, 1)
	go func() {
		h, d := rollupsOf(events)
		rollups <- sums{h, d}
	}()
	var hashed chan []tlog.Hash
	if !s.noTree {
		hashed = make(chan []tlog.Hash, 1)
		go func() { hashed <- leafHashes(events) }()
	}
	defer func() {
		if rollups != nil {
			<-rollups
		}
		if hashed != nil {
			<-hashed
		}
	}()
	// Rows go in index order: ids sorted, and events by time, so the heap
	// of a day partition is in time order (the order pages are read in)
	// and new B-tree entries mostly land on the rightmost leaf.
	byID := slices.Clone(events)
	slices.SortFunc(byID, func(a, b *agenttrail.Event) int {
		return cmp.Or(strings.Compare(a.ID, b.ID), strings.Compare(a.Org, b.Org))
	})
	c := &s.copy
	c.reset()
	for _, e := range byID {
		c.row(4)
		c.text(e.ID)
		c.text(e.Org)
		c.int8(e.Seq)
		c.timestamptz(e.Time)
	}
	if err := c.copyTo(ctx, tx, "event_ids", []string{"id", "org", "seq", "time"}); err != nil {
		return 0, fmt.Errorf("copy ids: %w", err)
	}
	// The leaves, in the same transaction: an event is never stored
	// without its leaf. They number the events (log_index), so they come
	// before the events' COPY; their rows (one per org and 1,024 hashes)
	// go with the last statements.
	var treeRows [][]any
	if hashed != nil {
		orgs := orgsOf(events)
		trees, err := openTrees(ctx, tx, orgs, sizes)
		if err != nil {
			return 0, err
		}
		leaves := <-hashed
		hashed = nil
		if treeRows, err = appendLeaves(trees, orgs, events, leaves); err != nil {
			return 0, err
		}
	}
	byTime := byID
	slices.SortFunc(byTime, func(a, b *agenttrail.Event) int {
		return cmp.Or(a.Time.Compare(b.Time), cmp.Compare(a.Seq, b.Seq))
	})
	for _, e := range byTime {
		c.event(e)
	}
	if err := c.copyTo(ctx, tx, "events", eventColumns()); err != nil {
		return 0, fmt.Errorf("copy events: %w", err)
	}
	// The tree's rows, the rollups and the counter in one round trip.
	r := <-rollups
	rollups = nil
	b = &pgx.Batch{}
	queueTreeRows(b, treeRows)
	queueRollups(b, "rollups_hourly", r.hourly)
	queueRollups(b, "rollups_daily", r.daily)
	b.Queue("UPDATE seq_counter SET last_seq = $1", last)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return 0, fmt.Errorf("tree, rollups and seq: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("commit: %w", err)
	}
	return len(events), nil
}

// queueStoredIDs queues the query storedIDs reads: which of events are
// already stored. The writer holds the seq counter's row lock, so no other
// Append can store one of them before this transaction commits. Looking the
// ids up and then COPYing the new ones measured faster than one INSERT ...
// ON CONFLICT DO NOTHING.
//
// Each id is one probe of event_ids' primary key, in a correlated subquery
// the planner cannot turn into a join: as a join, it knew the batch's size
// and chose a hash join over a sequential scan of every stored id, a cost
// that grew with the table (204 ms a batch at 61,000 stored ids, against
// 20 ms of probes).
//
// The probe has LIMIT 1 (the key is unique, so it changes no answer): it
// makes PostgreSQL pick the path that finds the first row soonest, an
// index-only scan of the key. Without it, and before event_ids has
// statistics (a new store, or one filling faster than autovacuum analyzes
// it), the planner guessed a few rows per id and probed with a bitmap heap
// scan, which took twice the CPU.
func queueStoredIDs(b *pgx.Batch, events []*agenttrail.Event) {
	ids := make([]string, len(events))
	orgs := make([]string, len(events))
	for i, e := range events {
		ids[i], orgs[i] = e.ID, e.Org
	}
	b.Queue(`SELECT b.id, b.org FROM unnest($1::text[], $2::text[]) AS b (id, org)
		WHERE (SELECT true FROM event_ids AS e WHERE e.id = b.id AND e.org = b.org LIMIT 1)`, ids, orgs)
}

// storedIDs reads the answer of queueStoredIDs' query.
func storedIDs(br pgx.BatchResults) (map[idKey]struct{}, error) {
	rows, err := br.Query()
	if err != nil {
		return nil, fmt.Errorf("dedup: %w", err)
	}
	stored := map[idKey]struct{}{}
	var k idKey
	if _, err := pgx.ForEachRow(rows, []any{&k.id, &k.org}, func() error {
		stored[k] = struct{}{}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("dedup: %w", err)
	}
	return stored, nil
}

// isMissingPartition reports whether err is PostgreSQL refusing a row that no
// partition accepts.
func isMissingPartition(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && pg.Code == "23514"
}
