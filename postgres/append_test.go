package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/postgres"
	"github.com/agenttrail/agenttrail/storetest"
	"github.com/jackc/pgx/v5"
)

// TestAppendInterleavedDuplicates mixes stored ids, repeats within the
// batch and new ids, so the seqs of the new events close up over the
// skipped ones: they must stay gapless, and event_ids must agree with
// events, or Get would miss them.
func TestAppendInterleavedDuplicates(t *testing.T) {
	s, dsn := openStore(t)
	ctx := context.Background()
	events := storetest.Events(5, 40, storetest.Base(), time.Hour)
	var stored []agenttrail.Event
	for i := 0; i < 40; i += 4 {
		stored = append(stored, events[i])
	}
	stored = storetest.AppendAll(t, s, stored, len(stored))
	last := stored[len(stored)-1].Seq

	batch := append([]agenttrail.Event(nil), events...)
	batch = append(batch, events[1], events[39], events[0])
	res, err := s.Append(ctx, batch)
	if err != nil || res.Inserted != 30 || res.Duplicates != 13 {
		t.Fatalf("Append(10 stored, 30 new, 3 repeated) = %+v, %v, want 30 inserted, 13 duplicates", res, err)
	}
	want := last
	for i, e := range batch {
		new := i < 40 && i%4 != 0
		switch {
		case new:
			want++
			if e.Seq != want {
				t.Errorf("Append: new event %d got seq %d, want %d", i, e.Seq, want)
			}
		case e.Seq != 0:
			t.Errorf("Append: duplicate %d got seq %d, want 0", i, e.Seq)
		}
	}
	if n := queryInt(t, dsn, `SELECT count(*) FROM events e JOIN event_ids i USING (id, org)
		WHERE e.seq <> i.seq OR e.time <> i.time`); n != 0 {
		t.Errorf("%d events disagree with their event_ids row", n)
	}
	for i := 1; i < 40; i += 4 {
		got, err := s.Get(ctx, batch[i].ID, agenttrail.Filter{})
		if err != nil || got.Seq != batch[i].Seq {
			t.Errorf("Get(%q) = seq %d, %v, want seq %d", batch[i].ID, got.Seq, err, batch[i].Seq)
		}
	}
	if got := queryInt(t, dsn, "SELECT last_seq FROM seq_counter"); got != want {
		t.Errorf("seq_counter = %d after the batch, want %d", got, want)
	}
}

// TestAppendProbesAfterDuplicate: an Append COPYs its ids without looking
// them up; one that finds an id stored (the key refuses it) starts over
// looking them up, stores only the new events with gapless seqs, and has
// the next ProbeAppends Appends look theirs up first, so that one holding a
// stored id commits in one attempt; finding one renews the window.
func TestAppendProbesAfterDuplicate(t *testing.T) {
	s, dsn := openStore(t)
	ctx := context.Background()
	events := storetest.Events(7, 21, storetest.Base(), time.Hour)
	first := storetest.AppendAll(t, s, events[:10], 10)
	if got, restarts := postgres.Probing(s), postgres.Restarts(s); got != 0 || restarts != 0 {
		t.Fatalf("after new events only, %d Appends will probe and %d attempts started over, want 0 and 0", got, restarts)
	}
	appendWant := func(batch []agenttrail.Event, inserted, dups int, seqs ...int64) {
		t.Helper()
		res, err := s.Append(ctx, batch)
		if err != nil || res.Inserted != inserted || res.Duplicates != dups {
			t.Fatalf("Append(%d stored, %d new) = %+v, %v, want %d inserted, %d duplicates", dups, inserted, res, err, inserted, dups)
		}
		for i, e := range batch {
			if e.Seq != seqs[i] {
				t.Errorf("Append(%d stored, %d new): event %d got seq %d, want %d", dups, inserted, i, e.Seq, seqs[i])
			}
		}
	}
	// Not probed: the key refuses events[3], and the Append starts over.
	batch := append([]agenttrail.Event{events[3]}, events[10:15]...)
	appendWant(append(batch, events[9]), 5, 2, 0, 11, 12, 13, 14, 15, 0)
	if got := postgres.Restarts(s); got != 1 {
		t.Errorf("the Append holding stored ids started over %d times, want 1", got)
	}
	if got := postgres.Probing(s); got != postgres.ProbeAppends {
		t.Errorf("after a stored id, %d Appends will probe, want %d", got, postgres.ProbeAppends)
	}
	// Probed: the stored id is left out before the COPY, in one attempt.
	appendWant([]agenttrail.Event{events[15], events[0], events[16]}, 2, 1, 16, 0, 17)
	if got := postgres.Restarts(s); got != 1 {
		t.Errorf("an Append that looked its ids up first started over: %d restarts in all, want 1", got)
	}
	if got := postgres.Probing(s); got != postgres.ProbeAppends {
		t.Errorf("after a probe found a stored id, %d Appends will probe, want %d (renewed)", got, postgres.ProbeAppends)
	}
	last := storetest.AppendAll(t, s, events[17:], 4)
	if last[0].Seq != 18 || last[3].Seq != 21 {
		t.Errorf("the next Append got seqs %d..%d, want 18..21", last[0].Seq, last[3].Seq)
	}
	if got := postgres.Probing(s); got != postgres.ProbeAppends-1 {
		t.Errorf("after one more Append, %d Appends will probe, want %d", got, postgres.ProbeAppends-1)
	}
	if got := queryInt(t, dsn, "SELECT count(*) FROM events"); got != 21 {
		t.Errorf("%d events stored, want 21", got)
	}
	got, err := s.Get(ctx, events[3].ID, agenttrail.Filter{})
	if err != nil || got.Seq != first[3].Seq {
		t.Errorf("Get(stored id sent again) = seq %d, %v, want its first seq %d", got.Seq, err, first[3].Seq)
	}
}

// TestAppendDuplicatesBesideNew overlaps an Append of stored events only
// (a spool replaying a batch whose answer was lost) with one of new
// events, on a store that has not seen a duplicate yet, so the first
// COPYs its ids unprobed and fails on the key while the second may have
// taken its seqs after it. Both must succeed, the new events stored once
// with gapless seqs, the trees intact.
func TestAppendDuplicatesBesideNew(t *testing.T) {
	const rounds, size = 12, 40
	events := storetest.Events(65, (rounds+1)*size, storetest.Base(), time.Hour)
	for r := range rounds {
		s, _ := openStore(t)
		old := storetest.AppendAll(t, s, events[:size], size)
		for i := range old {
			old[i].Seq, old[i].LogIndex = 0, nil
		}
		fresh := append([]agenttrail.Event(nil), events[(r+1)*size:(r+2)*size]...)
		var wg sync.WaitGroup
		var dupRes agenttrail.AppendResult
		var dupErr error
		wg.Go(func() { dupRes, dupErr = s.Append(context.Background(), old) })
		res, err := s.Append(context.Background(), fresh)
		wg.Wait()
		if dupErr != nil || dupRes.Inserted != 0 || dupRes.Duplicates != size {
			t.Fatalf("round %d: Append(stored events) = %+v, %v, want %d duplicates", r, dupRes, dupErr, size)
		}
		if err != nil || res.Inserted != size {
			t.Fatalf("round %d: Append(new events beside it) = %+v, %v, want %d inserted", r, res, err, size)
		}
		for i, e := range fresh {
			if e.Seq != int64(size+i+1) {
				t.Fatalf("round %d: new event %d got seq %d, want %d", r, i, e.Seq, size+i+1)
			}
		}
		p, err := s.Query(context.Background(), agenttrail.Query{Sort: agenttrail.SortSeq, Limit: 1000})
		if err != nil || len(p.Events) != 2*size {
			t.Fatalf("round %d: Query = %d events, %v, want %d", r, len(p.Events), err, 2*size)
		}
		for i, e := range p.Events {
			if e.Seq != int64(i+1) {
				t.Fatalf("round %d: stored seq %d at %d, want %d", r, e.Seq, i, i+1)
			}
		}
		storetest.CheckTrees(t, s, p.Events)
	}
}

// TestAppendCanceled cancels Append: nothing is stored and no seq is used.
func TestAppendCanceled(t *testing.T) {
	s, dsn := openStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	batch := storetest.Events(6, 10, storetest.Base(), time.Hour)
	if _, err := s.Append(ctx, batch); err == nil {
		t.Fatal("Append(canceled context) = nil error, want one")
	}
	for i := range batch {
		if batch[i].Seq != 0 {
			t.Errorf("Append(canceled) left seq %d on event %d, want 0", batch[i].Seq, i)
		}
	}
	if n := queryInt(t, dsn, "SELECT count(*) FROM events"); n != 0 {
		t.Errorf("Append(canceled) stored %d events, want 0", n)
	}
	res, err := s.Append(context.Background(), batch)
	if err != nil || res.Inserted != 10 || batch[0].Seq != 1 {
		t.Errorf("Append(after a canceled one) = %+v, %v, first seq %d; want 10 inserted from seq 1", res, err, batch[0].Seq)
	}
}

// watchSeqOrder reads the events table in a loop until stop is closed and
// reports every snapshot in which the stored seqs are not exactly 1..max:
// a batch of later seqs visible before an earlier one committed, which
// would make a reader that follows seq (a sink, the seq cursor) skip the
// earlier batch for good.
func watchSeqOrder(t *testing.T, dsn string, stop <-chan struct{}) <-chan int {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	reads := make(chan int, 1)
	go func() {
		defer conn.Close(context.Background())
		n := 0
		for {
			select {
			case <-stop:
				reads <- n
				return
			default:
			}
			var count, maxSeq int64
			if err := conn.QueryRow(context.Background(), "SELECT count(*), coalesce(max(seq), 0) FROM events").Scan(&count, &maxSeq); err != nil {
				t.Errorf("read events: %v", err)
				reads <- n
				return
			}
			if count != maxSeq {
				t.Errorf("a snapshot holds %d events with seqs up to %d: a later batch committed before an earlier one", count, maxSeq)
			}
			n++
		}
	}()
	return reads
}

// TestAppendsOverlapInSeqOrder runs Appends concurrently on one store (two
// overlap), and on two stores on one schema (two processes, each
// overlapping its own), with ids shared between concurrent batches, while
// a reader checks every snapshot: seqs become visible in order, every
// Append succeeds, every id is stored once, and the counter, the ids table
// and the trees agree with the events.
func TestAppendsOverlapInSeqOrder(t *testing.T) {
	for _, stores := range []int{1, 2} {
		t.Run(fmt.Sprintf("stores=%d", stores), func(t *testing.T) {
			s, dsn := openStore(t)
			all := []*postgres.Store{s}
			for range stores - 1 {
				other, err := postgres.Open(context.Background(), dsn, postgres.Config{})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { other.Close() })
				all = append(all, other)
			}
			const writers, batches, size, shared = 4, 6, 100, 25
			events := storetest.Events(62, writers*batches*size, storetest.Base(), 6*time.Hour)
			stop := make(chan struct{})
			reads := watchSeqOrder(t, dsn, stop)
			var wg sync.WaitGroup
			var inserted, retried atomic.Int64
			for w := range writers {
				wg.Go(func() {
					st := all[w%len(all)]
					for i := range batches {
						off := (w*batches + i) * size
						next := (((w+1)%writers)*batches + i) * size
						b := append([]agenttrail.Event(nil), events[off:off+size]...)
						b = append(b, events[next:next+shared]...)
						res, err := st.Append(context.Background(), b)
						// Writers in two processes make each other
						// start over, and may run out of attempts:
						// the error is then one to retry, as the
						// ingest spool does.
						for try := 0; err != nil && stores > 1 && agenttrail.ErrorCode(err) == agenttrail.EUNAVAILABLE && try < 20; try++ {
							retried.Add(1)
							res, err = st.Append(context.Background(), b)
						}
						if err != nil {
							t.Errorf("writer %d: Append(batch %d): %v", w, i, err)
							return
						}
						inserted.Add(int64(res.Inserted))
					}
				})
			}
			wg.Wait()
			close(stop)
			if n := <-reads; n == 0 {
				t.Error("the reader read no snapshot while the Appends ran")
			}
			t.Logf("%d Appends were retried", retried.Load())
			n := int64(len(events))
			if got := inserted.Load(); got != n {
				t.Errorf("inserted %d events in all, want %d", got, n)
			}
			if got := queryInt(t, dsn, "SELECT count(DISTINCT seq) FROM events WHERE seq BETWEEN 1 AND $1", n); got != n {
				t.Errorf("%d distinct seqs in 1..%d, want %d", got, n, n)
			}
			if got := queryInt(t, dsn, "SELECT last_seq FROM seq_counter"); got != n {
				t.Errorf("seq_counter = %d, want %d", got, n)
			}
			if got := queryInt(t, dsn, `SELECT count(*) FROM events e JOIN event_ids i USING (id, org)
				WHERE e.seq = i.seq AND e.time = i.time`); got != n {
				t.Errorf("%d events agree with their event_ids row, want %d", got, n)
			}
			if got := queryInt(t, dsn, "SELECT count(*) FROM event_ids"); got != n {
				t.Errorf("event_ids holds %d rows, want %d", got, n)
			}
			var stored []agenttrail.Event
			for q := (agenttrail.Query{Sort: agenttrail.SortSeq, Limit: 1000}); ; {
				p, err := s.Query(context.Background(), q)
				if err != nil {
					t.Fatal(err)
				}
				stored = append(stored, p.Events...)
				if len(p.Events) == 0 || p.Next == nil {
					break
				}
				q.After = p.Next
			}
			storetest.CheckTrees(t, s, stored)
		})
	}
}

// TestAppendAfterFailedOne fails one of two overlapping Appends with an
// event PostgreSQL refuses (a NUL in text): the other one, which may have
// taken its seqs after the failed one's, starts over and is stored whole,
// with no seq skipped.
func TestAppendAfterFailedOne(t *testing.T) {
	s, dsn := openStore(t)
	const rounds, size = 15, 50
	events := storetest.Events(63, 2*rounds*size, storetest.Base(), time.Hour)
	for r := range rounds {
		bad := append([]agenttrail.Event(nil), events[2*r*size:(2*r+1)*size]...)
		bad[size-1].Description = "nul \x00 byte"
		good := append([]agenttrail.Event(nil), events[(2*r+1)*size:(2*r+2)*size]...)
		var wg sync.WaitGroup
		var badErr error
		wg.Go(func() { _, badErr = s.Append(context.Background(), bad) })
		res, err := s.Append(context.Background(), good)
		wg.Wait()
		if err != nil || res.Inserted != size {
			t.Fatalf("round %d: Append(good batch) = %+v, %v, want %d inserted", r, res, err, size)
		}
		if agenttrail.ErrorCode(badErr) != agenttrail.EINVALID {
			t.Fatalf("round %d: Append(batch with a NUL) error = %v, want EINVALID", r, badErr)
		}
		for i := range bad {
			if bad[i].Seq != 0 {
				t.Fatalf("round %d: the failed Append left seq %d on event %d", r, bad[i].Seq, i)
			}
		}
	}
	n := int64(rounds * size)
	if got := queryInt(t, dsn, "SELECT count(DISTINCT seq) FROM events WHERE seq BETWEEN 1 AND $1", n); got != n {
		t.Errorf("%d distinct seqs in 1..%d, want %d: a failed Append left a hole", got, n, n)
	}
	if got := queryInt(t, dsn, "SELECT last_seq FROM seq_counter"); got != n {
		t.Errorf("seq_counter = %d, want %d", got, n)
	}
}

// TestAppendBesideRefusedOnes appends good batches while another goroutine
// appends, back to back, a batch the store refuses (a NUL in text), as the
// ingest pipeline's writer does while it isolates the events a store
// refuses. A good Append that took its seqs after a refused one starts
// over; that is no fault of its own batch, so every good Append must
// succeed, its events stored gaplessly.
func TestAppendBesideRefusedOnes(t *testing.T) {
	s, dsn := openStore(t)
	const good, size = 60, 20
	events := storetest.Events(64, good*size+size, storetest.Base(), time.Hour)
	bad := append([]agenttrail.Event(nil), events[good*size:]...)
	bad[size-1].Description = "nul \x00 byte"
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var refused atomic.Int64
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := s.Append(context.Background(), bad); agenttrail.ErrorCode(err) != agenttrail.EINVALID {
				t.Errorf("Append(batch with a NUL) error = %v, want EINVALID", err)
				return
			}
			refused.Add(1)
		}
	})
	failed := 0
	for i := range good {
		b := append([]agenttrail.Event(nil), events[i*size:(i+1)*size]...)
		if res, err := s.Append(context.Background(), b); err != nil || res.Inserted != size {
			failed++
			t.Errorf("Append(good batch %d) = %+v, %v, want %d inserted", i, res, err, size)
		}
	}
	close(stop)
	wg.Wait()
	t.Logf("%d refused Appends ran beside %d good ones, %d of which failed", refused.Load(), good, failed)
	n := int64(good-failed) * size
	if got := queryInt(t, dsn, "SELECT count(DISTINCT seq) FROM events WHERE seq BETWEEN 1 AND $1", n); got != n {
		t.Errorf("%d distinct seqs in 1..%d, want %d", got, n, n)
	}
}

// TestAppendsLetGo appends from two goroutines without a pause, so Appends
// keep chaining on each other, and checks that the store keeps only those
// in flight reachable, not every Append since the chain began.
func TestAppendsLetGo(t *testing.T) {
	s, _ := openStore(t)
	events := storetest.Events(64, 200*20, storetest.Base(), time.Hour)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	most := 0
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			most = max(most, postgres.Reachable(s))
		}
	})
	var writers sync.WaitGroup
	for w := range 2 {
		writers.Go(func() {
			for i := w; i < 200; i += 2 {
				if _, err := s.Append(context.Background(), events[i*20:(i+1)*20]); err != nil {
					t.Errorf("Append: %v", err)
					return
				}
			}
		})
	}
	writers.Wait()
	close(stop)
	wg.Wait()
	if most > 3 {
		t.Errorf("the store kept %d Appends reachable at once, want at most 3 (two in flight and one that failed)", most)
	}
	if n := postgres.Reachable(s); n != 0 {
		t.Errorf("%d Appends reachable after all ended, want 0", n)
	}
}
