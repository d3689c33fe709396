package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/integrity"
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
// order from the seq counter, COPYs them and their ids, appends them to
// their orgs' trees and updates the rollups. Seq is set on the stored events
// of batch once the transaction has committed.
//
// Up to appendSlots Appends run at once, overlapping: while one waits for
// its COMMIT to be flushed, the next COPYs its rows on another connection.
// Each takes its seqs (and its trees' tips) after those of the Append in
// flight before it, as they will be once that one commits, and commits
// only after it; its last statement moves the seq counter from exactly the
// value it started from, so seq order stays commit order, also with a
// writer in another process (whose commit in between makes this one start
// over). When an Append fails, those after it start over too, as does one
// whose COPY meets an id an Append in flight was storing.
func (s *Store) Append(ctx context.Context, batch []agenttrail.Event) (agenttrail.AppendResult, error) {
	if len(batch) == 0 {
		return agenttrail.AppendResult{}, nil
	}
	if err := s.lockAppend(ctx); err != nil {
		return agenttrail.AppendResult{}, err
	}
	defer s.unlockAppend()

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
		// The tree's leaf is of the event as stored, and PostgreSQL
		// keeps microseconds (pgx truncates). Done here, before
		// appendTx's goroutines read the batch.
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

	var inserted int
	var err error
	// own counts the attempts that failed for this Append's own sake
	// (another writer came in between), chained those that failed only
	// because the Append in flight before it did: the latter say nothing
	// of this batch, and a writer whose batches the store refuses one
	// after another (the pipeline isolating refused events) must not use
	// up the attempts of the batches chained on them.
	probe := s.probeIDs()
	for attempt, own, chained := 1, 0, 0; ; attempt++ {
		inserted, err = s.appendTx(ctx, batch, fresh, attempt > 1, probe)
		if err == nil || !startOver(err) {
			break
		}
		s.restarts.Add(1)
		// An id of the batch was stored already, or is being stored by
		// the Append in flight: the next attempt, and the next Appends,
		// look their ids up first. That is no failure of the attempt,
		// and happens once per Append.
		found := !probe && idStored(err)
		if found {
			s.probing.Store(probeAppends)
		}
		probe = true
		switch {
		case errors.Is(err, errChain):
			chained++
		case !found:
			own++
		}
		if own == appendAttempts || chained == chainAttempts {
			break
		}
		for i := range batch {
			batch[i].Seq, batch[i].LogIndex = 0, nil
		}
		if isMissingPartition(err) {
			// Another process dropped a partition this cache still
			// lists: reread the catalog.
			if err := s.loadPartitions(ctx); err != nil {
				return agenttrail.AppendResult{}, err
			}
			if err := s.ensurePartitions(ctx, days); err != nil {
				return agenttrail.AppendResult{}, err
			}
		}
		// Start after the Append in flight now, on what it leaves.
		if err := s.waitTail(ctx); err != nil {
			break
		}
	}
	if err != nil {
		for i := range batch {
			batch[i].Seq, batch[i].LogIndex = 0, nil
		}
		if startOver(err) {
			// Only other writers kept it from committing: the batch
			// is fine, and a retry (the spool's) gets it through.
			return agenttrail.AppendResult{}, &agenttrail.Error{Code: agenttrail.EUNAVAILABLE,
				Message: "postgres: append: started over too often as other writers committed first or failed; retry", Err: err}
		}
		return agenttrail.AppendResult{}, formatError("postgres: append", err)
	}
	return agenttrail.AppendResult{Inserted: inserted, Duplicates: len(batch) - inserted}, nil
}

// appendLockTimeout bounds each lock wait of an Append (see appendTx).
const appendLockTimeout = "30s"

// appendAttempts bounds how often one Append starts over (startOver)
// because another writer came in between; chainAttempts how often because
// the Append in flight before it failed (errChain).
const (
	appendAttempts = 5
	chainAttempts  = 100
)

// probeAppends is how many Appends look their ids up first after one
// found an id stored (see appendTx): duplicates come in runs, as a
// producer's spool or a retrying client sends a batch again.
const probeAppends = 64

// probeIDs reports whether the next Append looks its ids up before
// COPYing them, and counts it.
func (s *Store) probeIDs() bool {
	for {
		n := s.probing.Load()
		if n <= 0 {
			return false
		}
		if s.probing.CompareAndSwap(n, n-1) {
			return true
		}
	}
}

// idStored reports whether err is event_ids' key refusing an id it holds.
func idStored(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && pg.Code == "23505" && pg.TableName == "event_ids"
}

// errChain fails an Append whose predecessor in flight failed: its seqs
// and trees were taken after that one's.
var errChain = errors.New("the append in flight before this one failed")

// errCounterMoved fails an Append whose commit found the seq counter moved
// by a writer in another process since it took its seqs.
var errCounterMoved = errors.New("another writer committed since this append took its seqs")

// startOver reports whether err fails an attempt of Append that a new
// attempt, started after the Appends in flight, may get through: the one
// before it failed, another process's writer came in between (the counter
// moved, an id or a tree chunk was stored meanwhile, the two deadlocked
// on rollup rows, or a lock wait timed out), or a partition was dropped.
func startOver(err error) bool {
	if errors.Is(err, errChain) || errors.Is(err, errCounterMoved) || isMissingPartition(err) {
		return true
	}
	var pg *pgconn.PgError
	return errors.As(err, &pg) && (pg.Code == "23505" || pg.Code == "40P01" || pg.Code == "40001" || pg.Code == "55P03")
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
// returns how many it stored. With lock, when no Append is in flight, it
// holds the seq counter's row lock from the start, so no other process's
// writer can make it start over again.
//
// With probe it first looks up which of the ids are stored already, and
// leaves those out. Without, it takes them all to be new: event_ids' key
// refuses one that is not, the transaction fails on it, and Append starts
// over with probe. Most batches hold no stored id, and the lookup cost
// them a second descent of the key's B-tree per event, besides the COPY's.
func (s *Store) appendTx(ctx context.Context, batch []agenttrail.Event, fresh []int, lock, probe bool) (int, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit

	// The ids already stored, with probe. No lock is held: an Append in
	// flight may be storing one of them too, and then this one's COPY
	// waits for it and fails on the key, and Append starts over.
	ptrs := make([]*agenttrail.Event, len(fresh))
	for j, i := range fresh {
		ptrs[j] = &batch[i]
	}
	b := &pgx.Batch{}
	// Lock waits end: one Append can wait on another's row in PostgreSQL
	// while that one waits on a third here, in Go, which no deadlock
	// detector sees (it takes duplicate ids from writers in two processes
	// at once). The wait fails instead, and Append starts over.
	b.Queue("SET LOCAL lock_timeout = '" + appendLockTimeout + "'")
	if probe {
		queueStoredIDs(b, ptrs)
	}
	// With no Append in flight, the counter and the tree sizes come in the
	// same round trip; takeSeqs uses them if still none has been in flight
	// when it numbers the events (ended unchanged), and reads them again
	// otherwise. Not with lock: the row lock must not be held while this
	// Append may yet chain on another (that one's commit would wait for it).
	var read *committed
	var ended uint64
	if !lock {
		s.mu.Lock()
		idle := s.tail == nil
		ended = s.ended
		s.mu.Unlock()
		if idle {
			read = &committed{}
			s.queueCommitted(b, orgsOf(ptrs), false)
		}
	}
	br := tx.SendBatch(ctx, b)
	_, err = br.Exec()
	var stored map[idKey]struct{}
	if err == nil && probe {
		stored, err = storedIDs(br)
		if len(stored) > 0 {
			s.probing.Store(probeAppends) // the run of duplicates goes on
		}
	}
	if err == nil && read != nil {
		*read, err = s.scanCommitted(br)
	}
	if cerr := br.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("dedup: %w", cerr)
	}
	if err != nil {
		return 0, err
	}
	events := make([]*agenttrail.Event, 0, len(fresh))
	for _, i := range fresh {
		e := &batch[i]
		if _, ok := stored[idKey{e.Org, e.ID}]; !ok {
			events = append(events, e)
		}
	}
	if len(events) == 0 {
		return 0, nil
	}
	orgs := orgsOf(events)
	f, sizes, err := s.takeSeqs(ctx, tx, events, orgs, lock, read, ended)
	if err != nil {
		return 0, err
	}
	committed := false
	defer func() {
		// Roll back before telling the Appends after this one: a retry
		// among them may wait, holding s.mu, for a row lock this
		// transaction holds.
		if !committed {
			tx.Rollback(ctx) //nolint:errcheck // the connection is closed when it fails
		}
		s.end(f, committed)
	}()

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
	c := s.copies.Get().(*copyRows)
	defer s.copies.Put(c)
	// Rows go in index order: ids sorted, and events by time, so the heap
	// of a day partition is in time order (the order pages are read in)
	// and new B-tree entries mostly land on the rightmost leaf.
	byID := slices.Clone(events)
	slices.SortFunc(byID, func(a, b *agenttrail.Event) int {
		return cmp.Or(strings.Compare(a.ID, b.ID), strings.Compare(a.Org, b.Org))
	})
	// An Append inserts ids only after the one before it did: when both
	// hold an id, this one waits for that one's commit and fails on the
	// key, never the other way round (that one would wait for this
	// one's transaction, which waits for it).
	if f.prev != nil {
		if err := waitClosed(ctx, f.prev.idsIn); err != nil {
			return 0, err
		}
	}
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
	close(f.idsIn)
	// The leaves, in the same transaction: an event is never stored
	// without its leaf. They number the events (log_index), so they come
	// before the events' COPY; their rows (one per org and 1,024 hashes)
	// go with the last statements.
	var treeRows [][]any
	if hashed != nil {
		leaves := <-hashed
		hashed = nil
		if treeRows, err = s.appendTrees(ctx, tx, f, orgs, sizes, events, leaves); err != nil {
			return 0, err
		}
	} else {
		close(f.treed)
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
	r := <-rollups
	rollups = nil
	if f.prev != nil {
		if err := waitClosed(ctx, f.prev.done); err != nil {
			return 0, err
		}
		if !f.prev.ok {
			return 0, errChain
		}
	}
	// The tree's rows, the rollups and the counter in one round trip. The
	// counter moves only from where this Append took its seqs: the row
	// lock orders the commits, and the condition that no other writer's
	// came in between.
	b = &pgx.Batch{}
	queueTreeRows(b, treeRows)
	queueRollups(b, "rollups_hourly", r.hourly)
	queueRollups(b, "rollups_daily", r.daily)
	n := b.Len()
	b.Queue("UPDATE seq_counter SET last_seq = $1 WHERE last_seq = $2", f.lastSeq, f.lastSeq-int64(len(events)))
	br = tx.SendBatch(ctx, b)
	for range n {
		if _, err := br.Exec(); err != nil {
			br.Close()
			return 0, fmt.Errorf("tree and rollups: %w", err)
		}
	}
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	switch {
	case err != nil:
		return 0, fmt.Errorf("seq: %w", err)
	case tag.RowsAffected() != 1:
		return 0, errCounterMoved
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("commit: %w", err)
	}
	committed = true
	return len(events), nil
}

// flight is an Append between taking its seqs and ending. The next Append
// builds on it: it takes its seqs after lastSeq and continues its trees
// from tips, as they will be once this one commits.
type flight struct {
	prev    *flight // the Append in flight before it took its seqs, or nil; nil once it committed (written under Store.mu)
	lastSeq int64   // the seq counter once it committed

	// tips holds the tree of every org the Appends in flight appended to,
	// as it is once this one committed; set before treed is closed, and
	// left nil when this one failed first.
	tips  map[string]treeTip
	treed chan struct{}

	idsIn chan struct{} // closed once its ids are inserted, or it ended

	ok   bool          // it committed; set before done is closed
	done chan struct{} // closed when it ended
}

// treeTip is a tree as an Append in flight leaves it: its size, the
// hashes of its complete subtrees (all that appending reads), and the done
// channel of the Append that made it (not the Append: tips must not keep
// every Append before them reachable).
type treeTip struct {
	size   int64
	edge   []int64
	hashes []tlog.Hash
	done   <-chan struct{}
}

// committed is the seq counter and the tree sizes of some orgs as stored.
type committed struct {
	last  int64
	sizes map[string]int64
}

// queueCommitted queues the queries scanCommitted reads: the counter (with
// lock, taking its row lock) and the tree sizes of orgs.
func (s *Store) queueCommitted(b *pgx.Batch, orgs []string, lock bool) {
	if lock {
		b.Queue("SELECT last_seq FROM seq_counter FOR UPDATE")
	} else {
		b.Queue("SELECT last_seq FROM seq_counter")
	}
	if !s.noTree {
		b.Queue(treeSizesSQL, orgs)
	}
}

func (s *Store) scanCommitted(br pgx.BatchResults) (committed, error) {
	var c committed
	if err := br.QueryRow().Scan(&c.last); err != nil {
		return c, fmt.Errorf("seq: %w", err)
	}
	if !s.noTree {
		var err error
		if c.sizes, err = scanTreeSizes(br.Query()); err != nil {
			return c, err
		}
	}
	return c, nil
}

// takeSeqs numbers events after the Append in flight, or when none is,
// after the stored counter (holding its row lock with lock), and makes
// this Append the one in flight. With none in flight it also returns the
// stored tree sizes of orgs. read, when not nil, is what was stored when
// ended Appends had ended and none was in flight: it is used if that is
// still so.
func (s *Store) takeSeqs(ctx context.Context, tx pgx.Tx, events []*agenttrail.Event, orgs []string, lock bool, read *committed, ended uint64) (*flight, map[string]int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := &flight{prev: s.tail, treed: make(chan struct{}), idsIn: make(chan struct{}), done: make(chan struct{})}
	var c committed
	switch {
	case f.prev != nil:
		c.last = f.prev.lastSeq
	case read != nil && s.ended == ended:
		c = *read
	default:
		b := &pgx.Batch{}
		s.queueCommitted(b, orgs, lock)
		br := tx.SendBatch(ctx, b)
		var err error
		c, err = s.scanCommitted(br)
		if cerr := br.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("seq: %w", cerr)
		}
		if err != nil {
			return nil, nil, err
		}
	}
	last := c.last
	for _, e := range events {
		last++
		e.Seq = last
	}
	f.lastSeq = last
	s.tail = f
	return f, c.sizes, nil
}

// waitClosed waits until ch, one of an Append's channels, is closed.
func waitClosed(ctx context.Context, ch <-chan struct{}) error {
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return agenttrail.ContextError("postgres: wait for the append before", ctx.Err())
	}
}

// end records that f's Append ended, committed or not.
func (s *Store) end(f *flight, committed bool) {
	for _, ch := range []chan struct{}{f.idsIn, f.treed} {
		select {
		case <-ch:
		default:
			close(ch) // failed before: tips stays nil
		}
	}
	f.ok = committed
	close(f.done)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tail == f {
		// The next Append builds on the nearest one before f that may
		// still commit, or on the database when none may.
		p := f.prev
		for p != nil && isClosed(p.done) && !p.ok {
			p = p.prev
		}
		if p != nil && isClosed(p.done) {
			p = nil // committed: the database has it
		}
		s.tail = p
	}
	if committed {
		// Every Append before f has ended: let them go.
		f.prev = nil
	}
	s.ended++
}

// isClosed reports whether ch is closed.
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// waitTail waits until the Append in flight now has ended.
func (s *Store) waitTail(ctx context.Context) error {
	s.mu.Lock()
	f := s.tail
	s.mu.Unlock()
	if f == nil {
		return nil
	}
	select {
	case <-f.done:
		return nil
	case <-ctx.Done():
		return agenttrail.ContextError("postgres: wait for the append in flight", ctx.Err())
	}
}

// appendTrees numbers events (stored in this order) in their orgs' trees
// from their leaf hashes, setting LogIndex, and returns the tree_hashes
// rows to insert. The trees are those the Append before f leaves, or the
// stored ones (of sizes, when read) for orgs no Append in flight touched.
// It sets f's tips and closes f.treed.
func (s *Store) appendTrees(ctx context.Context, tx pgx.Tx, f *flight, orgs []string, sizes map[string]int64, events []*agenttrail.Event, leaves []tlog.Hash) ([][]any, error) {
	tips := map[string]treeTip{}
	if f.prev != nil {
		if err := waitClosed(ctx, f.prev.treed); err != nil {
			return nil, err
		}
		if f.prev.tips == nil {
			return nil, errChain
		}
		for org, t := range f.prev.tips {
			if !isClosed(t.done) {
				// (Ended: committed, so the database has it, or
				// failed, and then so does f.)
				tips[org] = t
			}
		}
	}
	trees := make(map[string]*integrity.TreeAppender, len(orgs))
	var stored []string
	for _, org := range orgs {
		t, ok := tips[org]
		if !ok {
			stored = append(stored, org)
			continue
		}
		a := integrity.NewTreeAppender(t.size, func(indexes []int64) ([]tlog.Hash, error) {
			return readHashes(ctx, tx, org, indexes)
		})
		a.Preload(t.edge, t.hashes)
		trees[org] = a
	}
	if len(stored) > 0 {
		opened, err := openTrees(ctx, tx, stored, sizes)
		if err != nil {
			return nil, err
		}
		maps.Copy(trees, opened)
	}
	rows, err := appendLeaves(trees, orgs, events, leaves)
	if err != nil {
		return nil, err
	}
	for _, org := range orgs {
		a := trees[org]
		edge := integrity.NewTreeAppender(a.Size(), nil).Edge()
		hs, err := a.ReadHashes(edge)
		if err != nil {
			return nil, err
		}
		tips[org] = treeTip{size: a.Size(), edge: edge, hashes: hs, done: f.done}
	}
	f.tips = tips
	close(f.treed)
	return rows, nil
}

// queueStoredIDs queues the query storedIDs reads: which of events are
// already stored. An Append in flight may store one of them before this
// transaction commits; then this one's COPY of the id waits for it and
// fails on the key, and Append starts over. Looking the ids up and then
// COPYing the new ones measured faster than one INSERT ... ON CONFLICT DO
// NOTHING.
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
