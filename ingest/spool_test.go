package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/ingest"
	"github.com/prometheus/client_golang/prometheus"
)

// outage makes a countingStore fail every Append with an EUNAVAILABLE
// error while down is set, the way a store that lost its database does.
func outage(s *countingStore) *atomic.Bool {
	var down atomic.Bool
	s.mu.Lock()
	s.failIf = func([]agenttrail.Event) error {
		if down.Load() {
			return agenttrail.Errorf(agenttrail.EUNAVAILABLE, "database unreachable")
		}
		return nil
	}
	s.mu.Unlock()
	return &down
}

func openTestSpool(t *testing.T, store agenttrail.Appender, cfg ingest.SpoolConfig, reg prometheus.Registerer) *ingest.Spool {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = 50 * time.Millisecond
	}
	cfg.Registerer = reg
	s, err := ingest.OpenSpool(store, cfg)
	if err != nil {
		t.Fatalf("OpenSpool: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Spool.Close: %v", err)
		}
	})
	return s
}

// runSpool runs s.Run until the returned stop is called (or the test ends).
func runSpool(t *testing.T, s *ingest.Spool) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once atomic.Bool
	stop = func() {
		if once.Swap(true) {
			return
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Spool.Run = %v, want nil", err)
		}
	}
	t.Cleanup(stop)
	return stop
}

// storedInOrder returns the ids the store holds, in seq order.
func storedInOrder(t *testing.T, s agenttrail.Store) []string {
	t.Helper()
	var ids []string
	q := agenttrail.Query{Sort: agenttrail.SortSeq, Limit: agenttrail.MaxLimit}
	for {
		page, err := s.Query(t.Context(), q)
		if err != nil {
			t.Fatalf("Query: %v", err)
		}
		for _, e := range page.Events {
			ids = append(ids, e.ID)
		}
		if len(page.Events) < q.Limit {
			return ids
		}
		last := page.Events[len(page.Events)-1]
		q.After = &agenttrail.Position{Seq: last.Seq}
	}
}

// waitFor polls cond until it holds. The bound is generous: on a loaded
// machine a replay of many segments takes long, and a passing wait returns
// as soon as cond holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSpoolOutage submits batches while the store is down, then brings it
// back: every batch is acknowledged as spooled, the spool replays them in
// the order they were accepted, and batches that arrive while it replays
// queue up behind them.
func TestSpoolOutage(t *testing.T) {
	store := openStore(t)
	down := outage(store)
	reg := prometheus.NewRegistry()
	sp := openTestSpool(t, store, ingest.SpoolConfig{}, reg)
	p := ingest.New(sp, ingest.Config{Registerer: reg})
	start(t, p)

	var want []string
	submit := func(n int, wantRes agenttrail.AppendResult) {
		t.Helper()
		evs := events(n)
		for _, e := range evs {
			want = append(want, e.ID)
		}
		res, err := p.Write(t.Context(), evs, ingest.Scope{})
		if err != nil || res.AppendResult != wantRes || len(res.Rejected) != 0 {
			t.Fatalf("Write(%d events) = %+v, %v; want %+v", n, res, err, wantRes)
		}
	}
	submit(10, agenttrail.AppendResult{Inserted: 10})
	down.Store(true)
	for i := 0; i < 5; i++ {
		submit(20, agenttrail.AppendResult{Spooled: 20})
	}
	if reason, refusing := sp.Degraded(); reason == "" || refusing {
		t.Errorf("Degraded() = %q, %v during the outage; want a reason, not refusing", reason, refusing)
	}
	// The store is back, but the replayer is not running yet: new batches
	// must still go behind the spooled ones.
	down.Store(false)
	submit(7, agenttrail.AppendResult{Spooled: 7})
	if st := sp.Status(); st.Batches != 6 {
		t.Errorf("Status().Batches = %d, want 6", st.Batches)
	}

	runSpool(t, sp)
	waitFor(t, "the spool to drain", func() bool { return sp.Status().Batches == 0 })
	// The six spooled batches are replayed in one Append.
	if calls := store.calls(); !slices.Contains(calls, 107) {
		t.Errorf("store Appends %v: want the 107 spooled events replayed in one", calls)
	}
	submit(3, agenttrail.AppendResult{Inserted: 3})
	got := storedInOrder(t, store)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("stored %d events in seq order %v,\nwant %d in acceptance order %v", len(got), got, len(want), want)
	}
	if reason, _ := sp.Degraded(); reason != "" {
		t.Errorf("Degraded() = %q after the replay, want \"\"", reason)
	}
	for name, want := range map[string]float64{
		"agenttrail_ingest_spooled_total":  107,
		"agenttrail_ingest_replayed_total": 107,
		"agenttrail_ingest_spool_batches":  0,
		"agenttrail_ingest_spool_bytes":    0,
		"agenttrail_ingest_accepted_total": 13,
	} {
		if got := gauge(t, reg, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}

func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		m := mf.GetMetric()[0]
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		}
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}

// TestSpoolSurvivesRestart spools batches, closes the spool without
// replaying (as a killed server would leave it), and replays them from a
// new Spool on the same directory; a batch replayed twice is stored once.
func TestSpoolSurvivesRestart(t *testing.T) {
	store := openStore(t)
	down := outage(store)
	down.Store(true)
	dir := t.TempDir()
	first, err := ingest.OpenSpool(store, ingest.SpoolConfig{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	a, b := events(40), events(40)
	for _, batch := range [][]agenttrail.Event{a, b} {
		if res, err := first.Append(t.Context(), batch); err != nil || res.Spooled != 40 {
			t.Fatalf("Append = %+v, %v; want 40 spooled", res, err)
		}
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	down.Store(false)
	// a reached the store before the crash, but its acknowledgement in the
	// spool did not: it is replayed again.
	if _, err := store.Store.Append(t.Context(), clone(a)); err != nil {
		t.Fatal(err)
	}

	sp := openTestSpool(t, store, ingest.SpoolConfig{Dir: dir}, nil)
	if reason, _ := sp.Degraded(); reason == "" {
		t.Errorf("Degraded() = \"\" with batches left by an earlier run")
	}
	runSpool(t, sp)
	waitFor(t, "the spool to drain", func() bool { return sp.Status().Batches == 0 })
	got := storedInOrder(t, store)
	if len(got) != 80 {
		t.Fatalf("stored %d events, want 80", len(got))
	}
	seen := map[string]bool{}
	for _, id := range got {
		if seen[id] {
			t.Fatalf("event %s stored twice", id)
		}
		seen[id] = true
	}
	left, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(left) != 0 {
		t.Errorf("spool files left after the replay: %v", left)
	}
}

func clone(evs []agenttrail.Event) []agenttrail.Event {
	return append([]agenttrail.Event(nil), evs...)
}

// TestSpoolFull checks the bound: past MaxBytes Write fails with an
// EUNAVAILABLE error wrapping ErrSpoolFull, counted as dropped, and
// Degraded reports that ingest is refused.
func TestSpoolFull(t *testing.T) {
	store := openStore(t)
	down := outage(store)
	down.Store(true)
	reg := prometheus.NewRegistry()
	sp := openTestSpool(t, store, ingest.SpoolConfig{MaxBytes: 64 << 10}, reg)
	p := ingest.New(sp, ingest.Config{Registerer: reg})
	start(t, p)

	var err error
	spooled := 0
	for i := 0; i < 1000 && err == nil; i++ {
		var res ingest.Result
		res, err = p.Write(t.Context(), events(20), ingest.Scope{})
		spooled += res.Spooled
	}
	if agenttrail.ErrorCode(err) != agenttrail.EUNAVAILABLE || !errors.Is(err, ingest.ErrSpoolFull) {
		t.Fatalf("Write past the bound = %v, want EUNAVAILABLE wrapping ErrSpoolFull", err)
	}
	if spooled == 0 {
		t.Fatalf("nothing was spooled before the spool was full")
	}
	if reason, refusing := sp.Degraded(); !refusing {
		t.Errorf("Degraded() = %q, false; want refusing", reason)
	}
	if got := labeled(t, reg, "agenttrail_ingest_dropped_total", "spool_full"); got != 20 {
		t.Errorf("dropped{reason=spool_full} = %v, want 20", got)
	}
	if st := sp.Status(); st.Bytes > 64<<10 {
		t.Errorf("spool holds %d bytes, over its bound of %d", st.Bytes, 64<<10)
	}

	down.Store(false)
	runSpool(t, sp)
	waitFor(t, "the spool to drain", func() bool { return sp.Status().Batches == 0 })
	if res, err := p.Write(t.Context(), events(5), ingest.Scope{}); err != nil || res.Inserted != 5 {
		t.Fatalf("Write after the replay = %+v, %v; want 5 inserted", res, err)
	}
	if got := len(storedInOrder(t, store)); got != spooled+5 {
		t.Errorf("stored %d events, want %d", got, spooled+5)
	}
}

// labeled returns the value of the counter name{label=value}.
func labeled(t *testing.T, reg *prometheus.Registry, name, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == value {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("metric %s{%s} not registered", name, value)
	return 0
}

// TestSpoolSkipsDamage damages one spooled batch on disk: the replay skips
// it, counts it, and stores the others.
func TestSpoolSkipsDamage(t *testing.T) {
	store := openStore(t)
	down := outage(store)
	down.Store(true)
	dir := t.TempDir()
	first, err := ingest.OpenSpool(store, ingest.SpoolConfig{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := first.Append(t.Context(), events(10)); err != nil {
			t.Fatal(err)
		}
	}
	first.Close()
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(segs) != 1 {
		t.Fatalf("segments = %v, want one", segs)
	}
	b, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff // inside the second record's payload
	if err := os.WriteFile(segs[0], b, 0o600); err != nil {
		t.Fatal(err)
	}
	down.Store(false)
	reg := prometheus.NewRegistry()
	sp := openTestSpool(t, store, ingest.SpoolConfig{Dir: dir}, reg)
	runSpool(t, sp)
	waitFor(t, "the spool to drain", func() bool { return sp.Status().Batches == 0 })
	if got := len(storedInOrder(t, store)); got != 20 {
		t.Errorf("stored %d events, want the 20 of the two intact batches", got)
	}
	if got := gauge(t, reg, "agenttrail_ingest_spool_corrupt_total"); got != 1 {
		t.Errorf("agenttrail_ingest_spool_corrupt_total = %v, want 1", got)
	}
}

// TestSpoolReplayRefusal makes the store refuse one spooled event at replay:
// it alone is discarded and counted, the rest of its batch is stored.
func TestSpoolReplayRefusal(t *testing.T) {
	store := openStore(t)
	var down atomic.Bool
	down.Store(true)
	evs := events(10)
	bad := evs[4].ID
	store.failIf = func(batch []agenttrail.Event) error {
		if down.Load() {
			return agenttrail.Errorf(agenttrail.EUNAVAILABLE, "database unreachable")
		}
		for _, e := range batch {
			if e.ID == bad {
				return agenttrail.Invalid("metadata", "refused by the store")
			}
		}
		return nil
	}
	reg := prometheus.NewRegistry()
	sp := openTestSpool(t, store, ingest.SpoolConfig{}, reg)
	if res, err := sp.Append(t.Context(), evs); err != nil || res.Spooled != 10 {
		t.Fatalf("Append = %+v, %v; want 10 spooled", res, err)
	}
	down.Store(false)
	runSpool(t, sp)
	waitFor(t, "the spool to drain", func() bool { return sp.Status().Batches == 0 })
	if got := len(storedInOrder(t, store)); got != 9 {
		t.Errorf("stored %d events, want 9", got)
	}
	if got := gauge(t, reg, "agenttrail_ingest_replayed_total"); got != 9 {
		t.Errorf("agenttrail_ingest_replayed_total = %v, want 9", got)
	}
	if got := labeled(t, reg, "agenttrail_ingest_spool_discarded_total", "store_refused"); got != 1 {
		t.Errorf("agenttrail_ingest_spool_discarded_total{reason=store_refused} = %v, want 1", got)
	}
}

// TestSpoolManySegments spools enough to fill several segment files and
// checks that the replay, which coalesces batches within a segment, stores
// everything in the order it was accepted.
func TestSpoolManySegments(t *testing.T) {
	store := openStore(t)
	down := outage(store)
	down.Store(true)
	dir := t.TempDir()
	// 32 MiB makes 2 MiB segments.
	sp := openTestSpool(t, store, ingest.SpoolConfig{Dir: dir, MaxBytes: 32 << 20}, nil)
	var want []string
	for i := 0; i < 150; i++ {
		evs := events(50)
		for j := range evs {
			evs[j].Description = fmt.Sprintf("batch %d event %d, padded to make the spool grow %0200d", i, j, 0)
			want = append(want, evs[j].ID)
		}
		if res, err := sp.Append(t.Context(), evs); err != nil || res.Spooled != 50 {
			t.Fatalf("Append = %+v, %v", res, err)
		}
	}
	if segs, _ := filepath.Glob(filepath.Join(dir, "*.seg")); len(segs) < 2 {
		t.Fatalf("%d segment files, want several for this test", len(segs))
	}
	down.Store(false)
	runSpool(t, sp)
	waitFor(t, "the spool to drain", func() bool { return sp.Status().Batches == 0 })
	if got := storedInOrder(t, store); !slices.Equal(got, want) {
		t.Fatalf("stored %d events, want the %d spooled, in order", len(got), len(want))
	}
}
