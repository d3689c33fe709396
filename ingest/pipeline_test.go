package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/ingest"
	"github.com/prometheus/client_golang/prometheus"
)

func TestGroupCommit(t *testing.T) {
	store := openStore(t)
	store.hold = make(chan struct{})
	store.entered = make(chan int, 10)
	p := ingest.New(store, ingest.Config{Registerer: prometheus.NewRegistry()})
	start(t, p)

	// The first request is taken alone and held inside Append; the ones
	// that arrive meanwhile must then share one Append.
	first := submitAsync(p, events(2))
	if n := <-store.entered; n != 2 {
		t.Fatalf("first Append got %d events, want 2", n)
	}
	var rest []<-chan submitResult
	for i := 0; i < 5; i++ {
		rest = append(rest, submitAsync(p, events(3)))
	}
	waitDepth(t, p, 15)
	close(store.hold)

	for i, ch := range append([]<-chan submitResult{first}, rest...) {
		r := <-ch
		want := 3
		if i == 0 {
			want = 2
		}
		if r.err != nil || r.res.Inserted != want || r.res.Duplicates != 0 {
			t.Errorf("Write #%d = %+v, %v; want %d inserted, 0 duplicates", i, r.res, r.err, want)
		}
	}
	if got := store.calls(); !slices.Equal(got, []int{2, 15}) {
		t.Errorf("Append calls with sizes %v, want [2 15]: one for the first request, one for the five that queued behind it", got)
	}
	if d := p.Depth(); d != 0 {
		t.Errorf("Depth() = %d after commit, want 0", d)
	}
}

func TestMaxBatchSplitsBetweenRequests(t *testing.T) {
	store := openStore(t)
	store.hold = make(chan struct{})
	store.entered = make(chan int, 10)
	p := ingest.New(store, ingest.Config{MaxBatch: 5})
	start(t, p)

	chans := []<-chan submitResult{submitAsync(p, events(1))}
	<-store.entered
	for _, n := range []int{3, 2, 4, 7} {
		chans = append(chans, submitAsync(p, events(n)))
		waitDepth(t, p, sumUntil([]int{3, 2, 4, 7}, n))
	}
	close(store.hold)
	for i, ch := range chans {
		if r := <-ch; r.err != nil {
			t.Errorf("Write #%d error: %v", i, r.err)
		}
	}
	// Whole requests only: 3+2, then 4 (4+7 > 5), then 7 alone (over MaxBatch).
	if got := store.calls(); !slices.Equal(got, []int{1, 5, 4, 7}) {
		t.Errorf("Append sizes = %v, want [1 5 4 7]", got)
	}
}

// sumUntil sums ns up to and including the first element equal to last.
func sumUntil(ns []int, last int) int {
	s := 0
	for _, n := range ns {
		s += n
		if n == last {
			break
		}
	}
	return s
}

func TestQueueFull(t *testing.T) {
	store := openStore(t)
	store.hold = make(chan struct{})
	store.entered = make(chan int, 10)
	reg := prometheus.NewRegistry()
	p := ingest.New(store, ingest.Config{QueueEvents: 10, Registerer: reg})
	start(t, p)

	inFlight := submitAsync(p, events(6)) // taken by the writer: not queued
	<-store.entered
	queued := submitAsync(p, events(8))
	waitDepth(t, p, 8)

	for _, tc := range []struct {
		n    int
		code string
	}{
		{3, agenttrail.EUNAVAILABLE}, // 8 + 3 > 10
		{11, agenttrail.ETOOLARGE},   // can never fit
	} {
		begin := time.Now()
		_, err := p.Write(t.Context(), events(tc.n), ingest.Scope{})
		if got := agenttrail.ErrorCode(err); got != tc.code {
			t.Errorf("Write(%d events) with 8 of 10 queued: code %q (%v), want %q", tc.n, got, err, tc.code)
		}
		if d := time.Since(begin); d > 5*time.Second {
			t.Errorf("Write(%d events) with a full queue took %v; it must fail at once", tc.n, d)
		}
	}
	if got := counterValue(t, reg, "agenttrail_ingest_dropped_total", "queue_full"); got != 3 {
		t.Errorf("dropped{reason=queue_full} = %v, want 3", got)
	}
	if got := gaugeValue(t, reg, "agenttrail_ingest_queue_depth"); got != 8 {
		t.Errorf("queue depth gauge = %v, want 8", got)
	}
	close(store.hold)
	for _, ch := range []<-chan submitResult{inFlight, queued} {
		if r := <-ch; r.err != nil {
			t.Errorf("Write error: %v", r.err)
		}
	}
	// Room again once the queue drained.
	if res, err := p.Write(t.Context(), events(10), ingest.Scope{}); err != nil || res.Inserted != 10 {
		t.Errorf("Write(10) after drain = %+v, %v; want 10 inserted", res, err)
	}
}

func TestShutdownDrains(t *testing.T) {
	store := openStore(t)
	store.hold = make(chan struct{})
	store.entered = make(chan int, 10)
	p := ingest.New(store, ingest.Config{MaxBatch: 4})
	r := start(t, p)

	chans := []<-chan submitResult{submitAsync(p, events(2))}
	<-store.entered
	for i := 0; i < 6; i++ {
		chans = append(chans, submitAsync(p, events(3)))
	}
	waitDepth(t, p, 18)

	// Stopping refuses new work at once, while an Append is in flight...
	r.cancel()
	if _, err := p.Write(t.Context(), events(1), ingest.Scope{}); agenttrail.ErrorCode(err) != agenttrail.EUNAVAILABLE {
		t.Errorf("Write while stopping = %v, want an unavailable error", err)
	}
	// ...yet commits everything queued before.
	close(store.hold)
	r.stop()
	total := 0
	for i, ch := range chans {
		res := <-ch
		if res.err != nil {
			t.Errorf("Write #%d error: %v", i, res.err)
		}
		total += res.res.Inserted
	}
	if total != 20 {
		t.Errorf("inserted %d events in all, want 20", total)
	}
	page, err := store.Query(t.Context(), agenttrail.Query{Sort: agenttrail.SortSeq, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != 20 {
		t.Errorf("store holds %d events after shutdown, want 20", len(page.Events))
	}
	if _, err := p.Write(t.Context(), events(1), ingest.Scope{}); agenttrail.ErrorCode(err) != agenttrail.EUNAVAILABLE {
		t.Errorf("Write after Run returned = %v, want an unavailable error", err)
	}
}

func TestDuplicatesPerCall(t *testing.T) {
	store := openStore(t)
	store.hold = make(chan struct{})
	store.entered = make(chan int, 10)
	reg := prometheus.NewRegistry()
	p := ingest.New(store, ingest.Config{Registerer: reg})
	start(t, p)

	// a is committed first; b, c and d share the next batch, in that order.
	a := submitAsync(p, events(2, "id-1", "id-2"))
	<-store.entered
	b := submitAsync(p, events(3, "id-2", "id-3", "id-4"))
	waitDepth(t, p, 3)
	c := submitAsync(p, events(3, "id-4", "id-5", "id-5"))
	waitDepth(t, p, 6)
	d := submitAsync(p, events(1, "id-1"))
	waitDepth(t, p, 7)
	close(store.hold)

	for _, tc := range []struct {
		name string
		ch   <-chan submitResult
		want agenttrail.AppendResult
	}{
		{"a", a, agenttrail.AppendResult{Inserted: 2}},
		{"b: id-2 stored by a", b, agenttrail.AppendResult{Inserted: 2, Duplicates: 1}},
		{"c: id-4 stored by b in the same batch, id-5 twice", c, agenttrail.AppendResult{Inserted: 1, Duplicates: 2}},
		{"d: id-1 stored by a", d, agenttrail.AppendResult{Duplicates: 1}},
	} {
		r := <-tc.ch
		if r.err != nil || r.res != tc.want {
			t.Errorf("Write %s = %+v, %v; want %+v", tc.name, r.res, r.err, tc.want)
		}
	}
	if got := store.calls(); len(got) != 2 {
		t.Errorf("Append calls = %v, want 2", got)
	}
	if got := counterValue(t, reg, "agenttrail_ingest_accepted_total", ""); got != 5 {
		t.Errorf("accepted counter = %v, want 5", got)
	}
	if got := counterValue(t, reg, "agenttrail_ingest_duplicates_total", ""); got != 4 {
		t.Errorf("duplicates counter = %v, want 4", got)
	}
}

func TestStoreErrorFailsOnlyItsRequest(t *testing.T) {
	store := openStore(t)
	store.hold = make(chan struct{})
	store.entered = make(chan int, 20)
	broken := errors.New("disk I/O error")
	store.failIf = func(batch []agenttrail.Event) error {
		for _, e := range batch {
			if e.ID == "poison" {
				return broken
			}
		}
		return nil
	}
	reg := prometheus.NewRegistry()
	p := ingest.New(store, ingest.Config{Registerer: reg})
	start(t, p)

	first := submitAsync(p, events(1))
	<-store.entered
	good1 := submitAsync(p, events(2))
	waitDepth(t, p, 2)
	bad := submitAsync(p, events(2, "ok-1", "poison"))
	waitDepth(t, p, 4)
	good2 := submitAsync(p, events(3))
	waitDepth(t, p, 7)
	close(store.hold)

	for name, ch := range map[string]<-chan submitResult{"first": first, "good1": good1, "good2": good2} {
		if r := <-ch; r.err != nil {
			t.Errorf("Write %s sharing a batch with a failing request: %v", name, r.err)
		}
	}
	r := <-bad
	if code := agenttrail.ErrorCode(r.err); code != agenttrail.EUNAVAILABLE {
		t.Errorf("Write of the failing request: code %q (%v), want %q", code, r.err, agenttrail.EUNAVAILABLE)
	}
	if msg := agenttrail.ErrorMessage(r.err); strings.Contains(msg, broken.Error()) {
		t.Errorf("error message %q must not leak the store's error", msg)
	}
	if got := counterValue(t, reg, "agenttrail_ingest_dropped_total", "store_error"); got != 2 {
		t.Errorf("dropped{reason=store_error} = %v, want 2", got)
	}
	// 1 alone, then 7 together (fails), then 2, 2 (fails), 3 one by one.
	if got := store.calls(); !slices.Equal(got, []int{1, 7, 2, 2, 3}) {
		t.Errorf("Append sizes = %v, want [1 7 2 2 3]", got)
	}
}

func TestNaiveCommitsEachEvent(t *testing.T) {
	store := openStore(t)
	p := ingest.New(store, ingest.Config{Naive: true})
	start(t, p)
	res, err := p.Write(t.Context(), events(5, "n1", "n2", "n1", "n3", "n4"), ingest.Scope{})
	want := agenttrail.AppendResult{Inserted: 4, Duplicates: 1}
	if err != nil || res.AppendResult != want || len(res.Rejected) != 0 {
		t.Fatalf("Write = %+v, %v; want %+v", res, err, want)
	}
	if got := store.calls(); !slices.Equal(got, []int{1, 1, 1, 1, 1}) {
		t.Errorf("Append sizes = %v, want one call per event", got)
	}
}

func TestLingerFillsBatch(t *testing.T) {
	store := openStore(t)
	// Linger is long enough to fail the test by timeout if the writer
	// waited for it; reaching MaxBatch must end it early.
	p := ingest.New(store, ingest.Config{MaxBatch: 3, Linger: time.Minute})
	start(t, p)
	var chans []<-chan submitResult
	for i := 0; i < 3; i++ {
		chans = append(chans, submitAsync(p, events(1)))
	}
	for _, ch := range chans {
		if r := <-ch; r.err != nil {
			t.Fatalf("Write error: %v", r.err)
		}
	}
	if got := store.calls(); !slices.Equal(got, []int{3}) {
		t.Errorf("Append sizes = %v, want [3]", got)
	}
}

func TestWriteContextEnds(t *testing.T) {
	store := openStore(t)
	store.hold = make(chan struct{})
	store.entered = make(chan int, 10)
	p := ingest.New(store, ingest.Config{})
	start(t, p)

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := p.Write(ctx, events(2, "c1", "c2"), ingest.Scope{})
		done <- err
	}()
	<-store.entered
	cancel()
	if err := <-done; agenttrail.ErrorCode(err) != agenttrail.EUNAVAILABLE {
		t.Errorf("Write after its context ended = %v, want an unavailable error", err)
	}
	close(store.hold)
	// The events were in flight and are committed all the same.
	res, err := p.Write(t.Context(), events(2, "c1", "c2"), ingest.Scope{})
	if err != nil || res.Duplicates != 2 {
		t.Errorf("re-Write = %+v, %v; want 2 duplicates", res, err)
	}
}

func TestConcurrentWrites(t *testing.T) {
	store := openStore(t)
	p := ingest.New(store, ingest.Config{MaxBatch: 50})
	start(t, p)
	const writers, per = 8, 40
	var inserted atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Go(func() {
			for i := 0; i < per; i++ {
				// Every writer sends ids 0..per-1 of its own and one shared id.
				ids := []string{fmt.Sprintf("w%d-%d", w, i), fmt.Sprintf("shared-%d", i)}
				res, err := p.Write(context.Background(), events(2, ids...), ingest.Scope{})
				if err != nil {
					t.Errorf("Write: %v", err)
					return
				}
				inserted.Add(int64(res.Inserted))
			}
		})
	}
	wg.Wait()
	if got, want := inserted.Load(), int64(writers*per+per); got != want {
		t.Errorf("inserted %d events in all, want %d", got, want)
	}
}

// TestWritersOverlap runs two writers: while one batch is held inside
// Append, the next request is taken by the second writer instead of
// waiting, and what arrives while both are busy shares one Append; every
// request is answered.
func TestWritersOverlap(t *testing.T) {
	store := openStore(t)
	store.hold = make(chan struct{})
	store.entered = make(chan int, 10)
	p := ingest.New(store, ingest.Config{Writers: 2, Registerer: prometheus.NewRegistry()})
	start(t, p)

	first := submitAsync(p, events(2))
	if n := <-store.entered; n != 2 {
		t.Fatalf("first Append got %d events, want 2", n)
	}
	second := submitAsync(p, events(4))
	select {
	case n := <-store.entered:
		if n != 4 {
			t.Fatalf("second Append got %d events, want 4", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the second request waited for the first Append: no second writer took it")
	}
	var rest []<-chan submitResult
	for range 3 {
		rest = append(rest, submitAsync(p, events(3)))
	}
	waitDepth(t, p, 9)
	close(store.hold)
	for i, ch := range append([]<-chan submitResult{first, second}, rest...) {
		r := <-ch
		want := []int{2, 4, 3, 3, 3}[i]
		if r.err != nil || r.res.Inserted != want {
			t.Errorf("Write #%d = %+v, %v; want %d inserted", i, r.res, r.err, want)
		}
	}
	if got := store.calls(); !slices.Equal(got, []int{2, 4, 9}) {
		t.Errorf("Append calls with sizes %v, want [2 4 9]", got)
	}
}
