package client

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/capture"
)

// The capture surfaces record through the Recorder.
var _ capture.Recorder = (*Recorder)(nil)

// newTestRecorder makes a Recorder on baseURL with fast timings and no
// heartbeats unless cfg says otherwise, and closes it at cleanup.
func newTestRecorder(t *testing.T, baseURL string, cfg RecorderConfig) *Recorder {
	t.Helper()
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = HeartbeatOff
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = 50 * time.Millisecond
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 5 * time.Second
	}
	c := New(baseURL)
	r, err := NewRecorder(c, cfg)
	if err != nil {
		t.Fatalf("NewRecorder: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r.Close(ctx)
		c.CloseIdleConnections()
	})
	return r
}

func closeRecorder(t *testing.T, r *Recorder) {
	t.Helper()
	// Generous: a loaded machine under the race detector is slow, and the
	// deadline only matters when something hangs.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := r.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// checkAccounted fails unless every recorded event is sent, rejected,
// dropped or waiting in the spool: nothing vanishes unaccounted.
func checkAccounted(t *testing.T, st RecorderStats, stillSpooled int64) {
	t.Helper()
	got := st.Sent - st.Replayed + st.Spooled + st.Rejected + st.DroppedTotal() - st.Dropped[DropClosed]
	if got != st.Recorded || st.Replayed+stillSpooled != st.Spooled {
		t.Errorf("stats do not add up: %+v (still spooled %d)", st, stillSpooled)
	}
}

func TestRecorderCloseFlushes(t *testing.T) {
	srv := newIngestServer(t)
	r := newTestRecorder(t, srv.URL(), RecorderConfig{BatchSize: 100, FlushInterval: time.Hour})
	const n = 1234
	for i := range n {
		r.Record(context.Background(), testEvent(i))
	}
	closeRecorder(t, r)
	checkSeqs(t, srv.stored(), r.ProducerID(), 1, n)
	st := r.Stats()
	if st.Sent != n || st.Recorded != n || st.DroppedTotal() != 0 || st.Spooled != 0 {
		t.Errorf("Stats() = %+v, want Sent = Recorded = %d and nothing dropped or spooled", st, n)
	}
	if srv.dups() != 0 {
		t.Errorf("server saw %d duplicates, want 0", srv.dups())
	}
}

func TestRecorderFlushInterval(t *testing.T) {
	srv := newIngestServer(t)
	r := newTestRecorder(t, srv.URL(), RecorderConfig{FlushInterval: 20 * time.Millisecond})
	for i := range 3 {
		r.Record(context.Background(), testEvent(i))
	}
	waitFor(t, 30*time.Second, "a partial batch to be sent by the interval", func() bool { return r.Stats().Sent == 3 })
	if got := srv.count(); got != 3 {
		t.Errorf("server stored %d events, want 3", got)
	}
}

func TestRecorderStampsEvents(t *testing.T) {
	srv := newIngestServer(t)
	r := newTestRecorder(t, srv.URL(), RecorderConfig{
		ProducerID: "prod-1", ActorID: "default-agent", ActorName: "Default", Org: "acme", Project: "p1",
	})
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	own := agenttrail.Event{ID: "own-id", Time: at, ActorType: agenttrail.ActorUser, ActorID: "alice",
		Source: "shell", Action: "ls", Result: agenttrail.ResultSuccess, Org: "other", ProducerID: "spoofed", ProducerSeq: 99}
	bare := agenttrail.Event{Source: "shell", Action: "pwd", Result: agenttrail.ResultSuccess}
	before := time.Now()
	r.Record(context.Background(), own)
	r.Record(context.Background(), bare)
	closeRecorder(t, r)
	got := srv.stored()
	if len(got) != 2 {
		t.Fatalf("stored %d events, want 2", len(got))
	}
	a, b := got[0], got[1]
	if a.ID != "own-id" || !a.Time.Equal(at) || a.ActorID != "alice" || a.ActorName != "" || a.ActorType != agenttrail.ActorUser || a.Org != "other" || a.Project != "p1" {
		t.Errorf("event with its own fields = %+v, want them kept (project defaulted)", a)
	}
	if a.ProducerID != "prod-1" || a.ProducerSeq != 1 {
		t.Errorf("producer = %q/%d, want prod-1/1", a.ProducerID, a.ProducerSeq)
	}
	if b.ActorID != "default-agent" || b.ActorName != "Default" || b.ActorType != agenttrail.ActorAgent || b.Org != "acme" || b.Project != "p1" {
		t.Errorf("bare event = %+v, want the actor defaults", b)
	}
	if b.ID == "" || b.Time.Before(before.Add(-time.Millisecond)) || b.ProducerSeq != 2 {
		t.Errorf("bare event id %q time %v seq %d, want an id, a time of recording and seq 2", b.ID, b.Time, b.ProducerSeq)
	}
}

func TestRecorderSpoolsWhileDownThenReplays(t *testing.T) {
	tests := []struct {
		name string
		down func(t *testing.T) (url string, up func() *ingestServer)
	}{
		{"not listening", func(t *testing.T) (string, func() *ingestServer) {
			addr := freeAddr(t)
			return "http://" + addr, func() *ingestServer { return startIngestServer(t, addr) }
		}},
		{"answering 503", func(t *testing.T) (string, func() *ingestServer) {
			srv := newIngestServer(t)
			srv.status.Store(503)
			return srv.URL(), func() *ingestServer { srv.status.Store(0); return srv }
		}},
		{"answering 401", func(t *testing.T) (string, func() *ingestServer) {
			srv := newIngestServer(t)
			srv.status.Store(401)
			return srv.URL(), func() *ingestServer { srv.status.Store(0); return srv }
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			url, up := tt.down(t)
			r := newTestRecorder(t, url, RecorderConfig{SpoolDir: dir, BatchSize: 100, FlushInterval: 10 * time.Millisecond})
			const n = 2000
			for i := range n {
				r.Record(context.Background(), testEvent(i))
				if i%500 == 0 {
					time.Sleep(time.Millisecond) // let the sender find the server down
				}
			}
			waitFor(t, 30*time.Second, "every event to be spooled", func() bool { return r.Stats().Spooled == n })
			if st := r.Stats(); st.Sent != 0 || st.SpoolPending == 0 || st.SpoolBytes == 0 {
				t.Fatalf("while down: Stats() = %+v, want nothing sent and a non-empty spool", st)
			}
			srv := up()
			waitFor(t, time.Minute, "the spool to be replayed", func() bool { return srv.count() == n })
			waitFor(t, 30*time.Second, "the spool to empty", func() bool { return r.Stats().SpoolPending == 0 })
			closeRecorder(t, r)
			checkSeqs(t, srv.stored(), r.ProducerID(), 1, n)
			st := r.Stats()
			if st.Replayed != n || st.Sent != n || st.DroppedTotal() != 0 || st.SpoolBytes != 0 {
				t.Errorf("Stats() = %+v, want Replayed = Sent = %d, nothing dropped, an empty spool", st, n)
			}
			checkAccounted(t, st, 0)
			if srv.dups() != 0 {
				t.Errorf("server saw %d duplicates, want 0", srv.dups())
			}
			if segs := segments(t, dir); len(segs) != 0 {
				t.Errorf("segments left after replay: %v", segs)
			}
		})
	}
}

func TestRecorderProducerContinuesAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	// First run: the server is down; everything ends in the spool.
	r1 := newTestRecorder(t, "http://"+addr, RecorderConfig{SpoolDir: dir})
	for i := range 10 {
		r1.Record(context.Background(), testEvent(i))
	}
	closeRecorder(t, r1)
	if st := r1.Stats(); st.Spooled != 10 || st.Sent != 0 {
		t.Fatalf("first run: Stats() = %+v, want 10 spooled, none sent", st)
	}

	// Second run: the server is up; it replays the first run's events and
	// numbers its own after them, as the same producer.
	srv := startIngestServer(t, addr)
	r2 := newTestRecorder(t, srv.URL(), RecorderConfig{SpoolDir: dir})
	if r2.ProducerID() != r1.ProducerID() {
		t.Fatalf("ProducerID after restart = %q, want %q", r2.ProducerID(), r1.ProducerID())
	}
	for i := range 5 {
		r2.Record(context.Background(), testEvent(i))
	}
	waitFor(t, 30*time.Second, "the first run's spool to be replayed", func() bool { return r2.Stats().Replayed == 10 })
	closeRecorder(t, r2)
	checkSeqs(t, srv.stored(), r1.ProducerID(), 1, 15)

	// A run that did not close (the state says so) in this boot of the OS
	// continues exactly after the last number it took: its counter is
	// mapped from producer.seq. Here it had taken 3 more numbers whose
	// events were lost in memory.
	b, err := os.ReadFile(filepath.Join(dir, producerFile))
	if err != nil {
		t.Fatal(err)
	}
	var st producerState
	if err := json.Unmarshal(b, &st); err != nil || !st.Clean || st.Seq != 15 {
		t.Fatalf("saved state = %s (%v), want clean at seq 15", b, err)
	}
	crash := func(boot string, taken int64) {
		t.Helper()
		st.Clean, st.Boot = false, boot
		if err := saveProducer(dir, st, true); err != nil {
			t.Fatal(err)
		}
		var c seqCounter
		if _, err := c.mapSeq(dir); err != nil {
			t.Fatal(err)
		}
		c.Store(st.Seq + taken)
		c.unmap()
	}
	next := func(cfg RecorderConfig) int64 {
		t.Helper()
		r := newTestRecorder(t, srv.URL(), cfg)
		r.Record(context.Background(), testEvent(0))
		closeRecorder(t, r)
		events := srv.stored()
		return slices.MaxFunc(events, func(a, b agenttrail.Event) int { return cmp.Compare(a.ProducerSeq, b.ProducerSeq) }).ProducerSeq
	}
	cfg := RecorderConfig{SpoolDir: dir, QueueSize: 100, BatchSize: 10}
	if boot := bootID(); boot != "" {
		crash(boot, 3)
		if got, want := next(cfg), st.Seq+3+1; got != want {
			t.Errorf("after a crash in this boot, next ProducerSeq = %d, want %d: exactly the 3 lost skipped", got, want)
		}
		st.Seq += 4
	}
	// After a reboot the mapped counter may have lost its last writes: the
	// next run skips as many numbers as the lost run could have held.
	crash("another-boot", 3)
	if got, want := next(cfg), st.Seq+int64(cfg.QueueSize+3*cfg.BatchSize)+1; got != want {
		t.Errorf("after a crash in another boot, next ProducerSeq = %d, want %d", got, want)
	}
}

func TestRecordNeverBlocks(t *testing.T) {
	tests := []struct {
		name  string
		spool bool
	}{{"without spool", false}, {"with spool", true}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := RecorderConfig{QueueSize: 10, BatchSize: 5, FlushInterval: time.Hour}
			if tt.spool {
				cfg.SpoolDir = t.TempDir()
			}
			r := newTestRecorder(t, "http://"+freeAddr(t), cfg)
			const n = 5000
			for i := range n {
				r.Record(context.Background(), testEvent(i))
			}
			st := r.Stats()
			if st.Recorded != n {
				t.Errorf("Stats().Recorded = %d, want %d", st.Recorded, n)
			}
			// Without a spool the sender holds one batch and the queue the
			// rest; with one, the spill path takes bursts to disk.
			if dq := st.Dropped[DropQueueFull]; dq == 0 || dq > n-int64(cfg.QueueSize) {
				t.Errorf("Dropped[queue_full] = %d, want between 1 and %d", dq, n-cfg.QueueSize)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			err := r.Close(ctx)
			st = r.Stats()
			if tt.spool {
				if err != nil {
					t.Errorf("Close: %v", err)
				}
				if st.Spooled == 0 || st.Dropped[DropShutdown] != 0 {
					t.Errorf("Stats() = %+v, want events spooled and none lost at Close", st)
				}
				checkAccounted(t, st, st.Spooled)
			} else {
				if err == nil || st.Dropped[DropShutdown] == 0 {
					t.Errorf("Close = %v with Dropped[shutdown] = %d; want an error and the held events counted", err, st.Dropped[DropShutdown])
				}
				checkAccounted(t, st, 0)
			}
		})
	}
}

func TestRecorderSpoolFull(t *testing.T) {
	r := newTestRecorder(t, "http://"+freeAddr(t), RecorderConfig{
		SpoolDir: t.TempDir(), MaxSpoolBytes: 8 << 10, BatchSize: 10, FlushInterval: time.Hour,
	})
	const n = 300
	for i := range n {
		r.Record(context.Background(), testEvent(i))
		if i%10 == 9 {
			waitFor(t, 30*time.Second, "the batch to leave the queue", func() bool { return r.Stats().Queued == 0 })
		}
	}
	closeRecorder(t, r)
	st := r.Stats()
	if st.Dropped[DropSpoolFull] == 0 || st.Spooled == 0 {
		t.Errorf("Stats() = %+v, want some events spooled and the rest dropped as spool_full", st)
	}
	if st.Spooled+st.Dropped[DropSpoolFull] != n || st.SpoolBytes > 8<<10 {
		t.Errorf("Spooled %d + Dropped[spool_full] %d != %d, or SpoolBytes %d over the bound", st.Spooled, st.Dropped[DropSpoolFull], n, st.SpoolBytes)
	}
}

func TestRecorderRejected(t *testing.T) {
	srv := newIngestServer(t)
	r := newTestRecorder(t, srv.URL(), RecorderConfig{})
	for i := range 7 {
		e := testEvent(i)
		if i%3 == 0 {
			e.Result = "maybe" // the server refuses it
		}
		r.Record(context.Background(), e)
	}
	bad := testEvent(99)
	bad.Metadata = json.RawMessage(`{not json`) // cannot even be encoded
	r.Record(context.Background(), bad)
	closeRecorder(t, r)
	st := r.Stats()
	if st.Rejected != 4 || st.Sent != 4 || srv.count() != 4 {
		t.Errorf("Rejected = %d, Sent = %d, stored %d; want 4, 4, 4", st.Rejected, st.Sent, srv.count())
	}
	checkAccounted(t, st, 0)
}

func TestRecorderSplitsTooLargeBatches(t *testing.T) {
	for _, spool := range []bool{false, true} {
		srv := newIngestServer(t)
		srv.maxEvents.Store(3)
		cfg := RecorderConfig{BatchSize: 20, FlushInterval: time.Hour}
		if spool {
			// The batch is spooled while the server is down, and split
			// when it is replayed.
			cfg.SpoolDir = t.TempDir()
			srv.status.Store(503)
		}
		r := newTestRecorder(t, srv.URL(), cfg)
		for i := range 20 {
			r.Record(context.Background(), testEvent(i))
		}
		if spool {
			waitFor(t, 30*time.Second, "the batch to be spooled", func() bool { return r.Stats().Spooled == 20 })
			srv.status.Store(0)
			waitFor(t, 30*time.Second, "the spool to be replayed", func() bool { return srv.count() == 20 })
		}
		closeRecorder(t, r)
		checkSeqs(t, srv.stored(), r.ProducerID(), 1, 20)
		if st := r.Stats(); st.Sent != 20 || st.Rejected != 0 {
			t.Errorf("spool %v: Stats() = %+v, want all 20 sent in smaller batches", spool, st)
		}
	}
}

func TestRecorderHeartbeat(t *testing.T) {
	srv := newIngestServer(t)
	r := newTestRecorder(t, srv.URL(), RecorderConfig{
		Heartbeat: 30 * time.Millisecond, FlushInterval: 10 * time.Millisecond, ActorID: "agent-hb", Org: "acme",
	})
	r.Record(context.Background(), testEvent(1))
	waitFor(t, 30*time.Second, "three heartbeats", func() bool { return srv.count() >= 4 })
	closeRecorder(t, r)
	events := srv.stored()
	checkSeqs(t, events, r.ProducerID(), 1, int64(len(events)))
	beats := 0
	for _, e := range events {
		if e.Action != agenttrail.ActionHeartbeat {
			continue
		}
		beats++
		if e.Source != agenttrail.SourceAgent || e.ActorID != "agent-hb" || e.ActorType != agenttrail.ActorAgent || e.Org != "acme" {
			t.Errorf("heartbeat = %+v, want source agent, actor agent-hb (agent), org acme", e)
		}
		var m struct {
			IntervalMS int64  `json:"interval_ms"`
			LastSeq    *int64 `json:"last_seq"`
		}
		if err := json.Unmarshal(e.Metadata, &m); err != nil || m.LastSeq == nil {
			t.Fatalf("heartbeat metadata %s: %v, want interval_ms and last_seq", e.Metadata, err)
		}
		last := *m.LastSeq
		if m.IntervalMS != 30 || last >= e.ProducerSeq || last < 0 {
			t.Errorf("heartbeat metadata %s at seq %d, want interval_ms 30 and last_seq below its own seq", e.Metadata, e.ProducerSeq)
		}
	}
	if beats < 3 {
		t.Errorf("%d heartbeats stored, want at least 3", beats)
	}
}

func TestNewRecorderHeartbeatNeedsActor(t *testing.T) {
	_, err := NewRecorder(New("http://127.0.0.1:1"), RecorderConfig{})
	if agenttrail.ErrorField(err) != "ActorID" {
		t.Errorf("NewRecorder without ActorID = %v, want an error naming ActorID", err)
	}
}

func TestRecordAfterClose(t *testing.T) {
	srv := newIngestServer(t)
	r := newTestRecorder(t, srv.URL(), RecorderConfig{})
	r.Record(context.Background(), testEvent(0))
	closeRecorder(t, r)
	r.Record(context.Background(), testEvent(1))
	if err := r.Close(context.Background()); err != nil {
		t.Errorf("second Close = %v, want the first's nil", err)
	}
	st := r.Stats()
	if st.Dropped[DropClosed] != 1 || st.Sent != 1 || srv.count() != 1 {
		t.Errorf("Stats() = %+v, stored %d; want 1 sent and 1 dropped as closed", st, srv.count())
	}
}

func TestRecorderConcurrentRecord(t *testing.T) {
	srv := newIngestServer(t)
	r := newTestRecorder(t, srv.URL(), RecorderConfig{QueueSize: 100000, BatchSize: 200, FlushInterval: 10 * time.Millisecond})
	const workers, each = 8, 500
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				r.Record(context.Background(), testEvent(w*each+i))
			}
		}()
	}
	wg.Wait()
	closeRecorder(t, r)
	checkSeqs(t, srv.stored(), r.ProducerID(), 1, workers*each)
}

func TestRecorderReplaysSpoolLeftDamaged(t *testing.T) {
	dir := t.TempDir()
	// A previous run spooled two batches, then crashed writing a third.
	s, err := openSpool(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var batches [][]agenttrail.Event
	for b := range 3 {
		var batch []agenttrail.Event
		for i := range 4 {
			e := testEvent(i)
			e.ID = agenttrail.NewID(time.Now())
			e.Time = time.Now()
			e.ProducerID, e.ProducerSeq = "old-producer", int64(b*4+i+1)
			batch = append(batch, e)
		}
		body, err := encodeBatch(nil, batch)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.append(body); err != nil {
			t.Fatal(err)
		}
		batches = append(batches, batch)
	}
	s.close()
	seg := segments(t, dir)[0]
	fi, _ := os.Stat(seg)
	if err := os.Truncate(seg, fi.Size()-7); err != nil {
		t.Fatal(err)
	}

	srv := newIngestServer(t)
	r := newTestRecorder(t, srv.URL(), RecorderConfig{SpoolDir: dir})
	waitFor(t, 30*time.Second, "the intact batches to be replayed", func() bool { return r.Stats().Replayed == 8 })
	closeRecorder(t, r)
	checkSeqs(t, srv.stored(), "old-producer", 1, 8)
	if segs := segments(t, dir); len(segs) != 0 {
		t.Errorf("segments left: %v", segs)
	}
}

// TestRecorderStopsCleanly: a capture process heartbeats as itself while
// its events name other actors, and its last event is the stop.
func TestRecorderStopsCleanly(t *testing.T) {
	srv := newIngestServer(t)
	r := newTestRecorder(t, srv.URL(), RecorderConfig{
		Heartbeat: 20 * time.Millisecond, FlushInterval: 10 * time.Millisecond,
		HeartbeatActorID: "proxy-mcp@host", HeartbeatActorType: agenttrail.ActorSystem,
	})
	e := testEvent(1)
	e.ActorID = "agent-7"
	r.Record(context.Background(), e)
	waitFor(t, 30*time.Second, "two heartbeats", func() bool { return srv.count() >= 3 })
	closeRecorder(t, r)
	events := srv.stored()
	checkSeqs(t, events, r.ProducerID(), 1, int64(len(events)))
	last := slices.MaxFunc(events, func(a, b agenttrail.Event) int { return cmp.Compare(a.ProducerSeq, b.ProducerSeq) })
	if last.Action != agenttrail.ActionStop || last.Source != agenttrail.SourceAgent || last.ActorID != "proxy-mcp@host" || last.ActorType != agenttrail.ActorSystem {
		t.Errorf("last event = %+v, want the stop of proxy-mcp@host (system)", last)
	}
	stops := 0
	for _, e := range events {
		switch e.Action {
		case agenttrail.ActionStop:
			stops++
		case agenttrail.ActionHeartbeat:
			if e.ActorID != "proxy-mcp@host" || e.ActorType != agenttrail.ActorSystem {
				t.Errorf("heartbeat = %+v, want actor proxy-mcp@host (system)", e)
			}
		default:
			if e.ActorID != "agent-7" {
				t.Errorf("event = %+v, want actor agent-7", e)
			}
		}
	}
	if stops != 1 {
		t.Errorf("%d stop events, want 1", stops)
	}
}

// TestRecorderSpoolInUse: a second Recorder on a spool directory in use
// fails at once and leaves the first one's producer state alone.
func TestRecorderSpoolInUse(t *testing.T) {
	srv := newIngestServer(t)
	dir := filepath.Join(t.TempDir(), "not", "there", "yet")
	first := newTestRecorder(t, srv.URL(), RecorderConfig{SpoolDir: dir})
	first.Record(context.Background(), testEvent(1))
	state := filepath.Join(dir, producerFile)
	before, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	second, err := NewRecorder(New(srv.URL()), RecorderConfig{SpoolDir: dir, Heartbeat: HeartbeatOff})
	if !errors.Is(err, ErrSpoolInUse) {
		if second != nil {
			second.Close(context.Background())
		}
		t.Fatalf("NewRecorder on a spool in use = %v, want ErrSpoolInUse", err)
	}
	if after, _ := os.ReadFile(state); !bytes.Equal(after, before) {
		t.Errorf("producer state after the refused start = %s, want %s unchanged", after, before)
	}
	closeRecorder(t, first)
	third := newTestRecorder(t, srv.URL(), RecorderConfig{SpoolDir: dir})
	if third.ProducerID() != first.ProducerID() {
		t.Errorf("producer after the first closed = %s, want %s continued", third.ProducerID(), first.ProducerID())
	}
}
