package storetest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
)

// testConcurrent reads while one writer appends. Every batch is atomic, so
// a reader sees whole batches only: totals are multiples of the batch size.
func testConcurrent(t *testing.T, s agenttrail.Store) {
	const batches, size = 20, 100
	events := Events(60, batches*size, Base(), 24*time.Hour)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	report := func(err error) {
		select {
		case errs <- err:
		default:
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer cancel()
		for i := 0; i < batches; i++ {
			b := append([]agenttrail.Event(nil), events[i*size:(i+1)*size]...)
			res, err := s.Append(ctx, b)
			if err != nil || res.Inserted != size {
				report(fmt.Errorf("Append(batch %d) = %+v, %v, want %d inserted", i, res, err, size))
				return
			}
		}
	}()
	whole := agenttrail.Filter{Since: Base().Truncate(time.Hour), Until: Base().Add(25 * time.Hour)}
	for r := 0; r < 3; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				p, err := s.Query(ctx, agenttrail.Query{Sort: sorts()[r], Limit: 200})
				if err != nil {
					if ctx.Err() == nil {
						report(fmt.Errorf("Query(sort %s) error: %v", sorts()[r], err))
					}
					return
				}
				for i := 1; i < len(p.Events); i++ {
					if !After(sorts()[r], agenttrail.PositionOf(&p.Events[i-1]), agenttrail.PositionOf(&p.Events[i])) {
						report(fmt.Errorf("Query(sort %s) returned events out of order", sorts()[r]))
					}
				}
				var b []agenttrail.Bucket
				if r == 0 {
					b, err = s.Aggregate(ctx, agenttrail.Filter{}, agenttrail.DimSource)
				} else {
					var tb []agenttrail.TimeBucket
					tb, err = s.Series(ctx, whole, agenttrail.Hour, "")
					for _, x := range tb {
						b = append(b, agenttrail.Bucket{Usage: agenttrail.Usage{Count: x.Count}})
					}
				}
				if err != nil {
					if ctx.Err() == nil {
						report(fmt.Errorf("Aggregate/Series error: %v", err))
					}
					return
				}
				var total int64
				for _, x := range b {
					total += x.Count
				}
				if total%size != 0 {
					report(fmt.Errorf("reader %d saw %d events, not whole batches of %d", r, total, size))
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	stored := all(t, s, agenttrail.Filter{})
	if len(stored) != batches*size {
		t.Fatalf("Query(all) after concurrent appends = %d events, want %d", len(stored), batches*size)
	}
	checkAggregate(t, s, stored, agenttrail.Filter{}, agenttrail.DimSource)
}

// testConcurrentAppends appends from several goroutines at once, each batch
// sharing ids with another goroutine's, so a store that overlaps Appends
// meets the same id in two of them in flight. Every Append succeeds, each
// id is stored once, seqs number the stored events 1..n without a hole,
// the trees hold every event once in seq order, and the rollups agree
// with the events.
func testConcurrentAppends(t *testing.T, s agenttrail.Store) {
	const writers, batches, size, shared = 4, 8, 120, 30
	// Writer w's batch i is its own events plus the first shared events
	// of writer w+1's batch i.
	events := Events(61, writers*batches*size, Base(), 48*time.Hour)
	batchOf := func(w, i int) []agenttrail.Event {
		off := (w*batches + i) * size
		return events[off : off+size]
	}
	var inserted atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, writers*batches)
	for w := range writers {
		wg.Go(func() {
			for i := range batches {
				b := append([]agenttrail.Event(nil), batchOf(w, i)...)
				b = append(b, batchOf((w+1)%writers, i)[:shared]...)
				res, err := s.Append(t.Context(), b)
				if err != nil {
					errs <- fmt.Errorf("writer %d: Append(batch %d) error: %v", w, i, err)
					return
				}
				if res.Inserted+res.Duplicates != len(b) {
					errs <- fmt.Errorf("writer %d: Append(batch %d of %d) = %+v", w, i, len(b), res)
				}
				inserted.Add(int64(res.Inserted))
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := inserted.Load(); got != int64(len(events)) {
		t.Errorf("the Appends inserted %d events in all, want %d (each id once)", got, len(events))
	}
	stored := all(t, s, agenttrail.Filter{})
	if len(stored) != len(events) {
		t.Fatalf("Query(all) = %d events, want %d", len(stored), len(events))
	}
	for i := range stored {
		if stored[i].Seq != int64(i+1) {
			t.Fatalf("stored event %d in seq order has seq %d, want %d: seqs skip or repeat", i, stored[i].Seq, i+1)
		}
	}
	CheckTrees(t, s, stored)
	checkAggregate(t, s, stored, agenttrail.Filter{}, agenttrail.DimActorID)
	checkAggregate(t, s, stored, agenttrail.Filter{}, agenttrail.DimModel)
}
