package client

import (
	"context"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/servertest"
)

func TestClientAgainstServer(t *testing.T) {
	srv := servertest.StartAt(t, "127.0.0.1:0", t.TempDir())
	c := New(srv.URL, WithToken(srv.Token))
	defer c.CloseIdleConnections()
	ctx := context.Background()
	if err := c.Ready(ctx); err != nil {
		t.Fatalf("Ready: %v", err)
	}

	now := time.Now().UTC().Truncate(time.Millisecond)
	var events []agenttrail.Event
	for i := range 5 {
		e := testEvent(i)
		e.ID = agenttrail.NewID(now)
		e.Time = now.Add(time.Duration(i) * time.Second)
		events = append(events, e)
	}
	events[1].Source = agenttrail.SourceLLM
	bad := testEvent(9)
	bad.ActorType = "robot"
	res, err := c.Ingest(ctx, append(slices.Clone(events), bad))
	if err != nil {
		t.Fatalf("Ingest: %v", err)
	}
	if res.Accepted != 5 || res.Duplicates != 0 || len(res.Rejected) != 1 || res.Rejected[0].Index != 5 {
		t.Fatalf("Ingest = %+v, want 5 accepted and index 5 rejected", res)
	}
	if res, err := c.Ingest(ctx, events[:2]); err != nil || res.Accepted != 0 || res.Duplicates != 2 {
		t.Fatalf("Ingest again = %+v, %v; want 2 duplicates", res, err)
	}

	// Page through in commit order, following the cursor.
	var got []agenttrail.Event
	o := QueryOptions{Sort: agenttrail.SortSeq, Limit: 2}
	for range 10 {
		p, err := c.Query(ctx, agentEvents(), o)
		if err != nil {
			t.Fatalf("Query: %v", err)
		}
		got = append(got, p.Events...)
		if len(p.Events) == 0 {
			break
		}
		o.Cursor = p.NextCursor
	}
	if len(got) != 5 {
		t.Fatalf("paged through %d events, want 5", len(got))
	}
	for i, e := range got {
		if e.ID != events[i].ID || e.Seq == 0 || e.ReceivedAt.IsZero() {
			t.Errorf("page event %d = id %q seq %d, want id %q with seq and received_at set", i, e.ID, e.Seq, events[i].ID)
		}
	}

	e, err := c.Get(ctx, events[3].ID)
	if err != nil || e.ID != events[3].ID || !e.Time.Equal(events[3].Time) || e.ActorID != events[3].ActorID {
		t.Errorf("Get = %+v, %v; want event %q", e, err, events[3].ID)
	}
	if _, err := c.Get(ctx, "no-such-id"); agenttrail.ErrorCode(err) != agenttrail.ENOTFOUND {
		t.Errorf("Get(unknown) error = %v, want ENOTFOUND", err)
	}
	_, err = c.Query(ctx, agenttrail.Filter{}, QueryOptions{Limit: 500})
	if agenttrail.ErrorCode(err) != agenttrail.EINVALID || agenttrail.ErrorField(err) != "limit" || IsRetryable(err) {
		t.Errorf("Query(limit 500) error = %v (field %q), want a non-retryable EINVALID naming limit", err, agenttrail.ErrorField(err))
	}

	buckets, err := c.Aggregate(ctx, agentEvents(), agenttrail.DimSource)
	if err != nil {
		t.Fatalf("Aggregate: %v", err)
	}
	want := []agenttrail.Bucket{{Key: agenttrail.SourceShell, Usage: agenttrail.Usage{Count: 4}}, {Key: agenttrail.SourceLLM, Usage: agenttrail.Usage{Count: 1}}}
	if len(buckets) != 2 || buckets[0].Key != want[0].Key || buckets[0].Count != 4 || buckets[1].Key != want[1].Key || buckets[1].Count != 1 {
		t.Errorf("Aggregate = %+v, want %+v", buckets, want)
	}
	span := agentEvents()
	span.Since, span.Until = now.Add(-2*time.Hour), now.Add(time.Hour)
	series, err := c.Series(ctx, span, agenttrail.Hour, agenttrail.DimResult)
	if err != nil {
		t.Fatalf("Series: %v", err)
	}
	var total int64
	for _, b := range series {
		total += b.Count
	}
	if len(series) < 3 || total != 5 {
		t.Errorf("Series = %d buckets counting %d, want at least 3 hourly buckets counting 5", len(series), total)
	}

	srv.Stop()
	if err := c.Ready(ctx); err == nil || !IsRetryable(err) {
		t.Errorf("Ready with the server stopped = %v, want a retryable error", err)
	}
}

// TestRecorderServerDown records 100,000 events while the server is not
// listening, then starts it on the same address: every event must arrive
// exactly once, Record must stay cheap, and memory must stay bounded.
func TestRecorderServerDown(t *testing.T) {
	n := 100_000
	if testing.Short() || raceEnabled {
		n = 10_000
	}
	addr := freeAddr(t)
	c := New("http://"+addr, WithToken(servertest.Token))
	defer c.CloseIdleConnections()
	r, err := NewRecorder(c, RecorderConfig{
		SpoolDir:      t.TempDir(),
		FlushInterval: 50 * time.Millisecond,
		MaxBackoff:    200 * time.Millisecond,
		Heartbeat:     HeartbeatOff,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	ctx := context.Background()
	lat := make([]time.Duration, n)
	events := make([]agenttrail.Event, 64)
	for i := range events {
		events[i] = testEvent(i)
	}

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	for i := range n {
		// An agent records far slower than this loop; let the spool keep
		// up so the test measures loss, not the queue bound (which
		// TestRecordNeverBlocks covers).
		if i%1000 == 0 {
			for len(r.queue) > cap(r.queue)/2 {
				time.Sleep(time.Millisecond)
			}
		}
		t0 := time.Now()
		r.Record(ctx, events[i%len(events)])
		lat[i] = time.Since(t0)
	}
	recordTime := time.Since(start)
	waitFor(t, 2*time.Minute, "every event to be spooled", func() bool { return r.Stats().Spooled == int64(n) })
	runtime.GC()
	runtime.ReadMemStats(&after)
	spoolTime := time.Since(start)

	slices.Sort(lat)
	q := func(p float64) time.Duration { return lat[int(float64(n-1)*p)] }
	st := r.Stats()
	t.Logf("Record with the server down: %d events in %v; p50 %v, p99 %v, p99.9 %v, max %v", n, recordTime, q(0.5), q(0.99), q(0.999), lat[n-1])
	t.Logf("spooled %d events (%d batches, %d bytes) in %v", st.Spooled, st.SpoolPending, st.SpoolBytes, spoolTime)
	t.Logf("HeapInuse before %d KiB, after %d KiB", before.HeapInuse>>10, after.HeapInuse>>10)
	if st.DroppedTotal() != 0 || st.Sent != 0 {
		t.Fatalf("while down: Stats() = %+v, want nothing dropped or sent", st)
	}
	if grew := int64(after.HeapInuse) - int64(before.HeapInuse); grew > 64<<20 {
		t.Errorf("HeapInuse grew by %d MiB while spooling %d events, want under 64 MiB", grew>>20, n)
	}

	upAt := time.Now()
	srv := servertest.StartAt(t, addr, t.TempDir())
	waitFor(t, 3*time.Minute, "the spool to be replayed", func() bool { return r.Stats().SpoolPending == 0 })
	t.Logf("replayed %d events in %v", r.Stats().Replayed, time.Since(upAt))
	closeCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := r.Close(closeCtx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	st = r.Stats()
	if st.Sent != int64(n) || st.Replayed != int64(n) || st.Rejected != 0 || st.DroppedTotal() != 0 {
		t.Errorf("Stats() = %+v, want Sent = Replayed = %d", st, n)
	}

	// Count what the server stored, through its API: every producer_seq
	// from 1 to n, each once.
	seen := make([]int, n+1)
	o := QueryOptions{Sort: agenttrail.SortSeq, Limit: agenttrail.MaxLimit}
	f := agenttrail.Filter{ProducerID: []string{r.ProducerID()}}
	stored := 0
	for {
		p, err := c.Query(ctx, f, o)
		if err != nil {
			t.Fatalf("Query: %v", err)
		}
		if len(p.Events) == 0 {
			break
		}
		for _, e := range p.Events {
			if e.ProducerSeq < 1 || e.ProducerSeq > int64(n) {
				t.Fatalf("stored producer_seq %d, out of 1..%d", e.ProducerSeq, n)
			}
			seen[e.ProducerSeq]++
			stored++
		}
		o.Cursor = p.NextCursor
	}
	if stored != n {
		t.Errorf("server stored %d events, want %d", stored, n)
	}
	for seq := 1; seq <= n; seq++ {
		if seen[seq] != 1 {
			t.Fatalf("producer_seq %d stored %d times, want once", seq, seen[seq])
		}
	}
	gaps, err := srv.Store.SequenceGaps(ctx, f)
	if err != nil || len(gaps) != 0 {
		t.Errorf("SequenceGaps = %+v, %v; want none", gaps, err)
	}
}
