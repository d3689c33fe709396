package cluster_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/cluster"
	"github.com/agenttrail/agenttrail/ingest"
	"github.com/agenttrail/agenttrail/internal/clustertest"
	"github.com/agenttrail/agenttrail/postgres"
)

// node is what a test runs of a cluster: a connection to NATS with a
// stream of the test's own.
func connect(t *testing.T, url, stream string) *cluster.Conn {
	t.Helper()
	return connectR(t, url, stream, 0)
}

// running runs f until the test ends (or stop is called) and returns stop,
// which cancels f and waits for it.
func running(t *testing.T, f func(context.Context) error) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := f(ctx); err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

func openStore(t *testing.T, dsn string) agenttrail.Store {
	t.Helper()
	st, err := postgres.Open(t.Context(), dsn, postgres.Config{})
	if err != nil {
		t.Fatalf("postgres.Open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// ingestNode is the write path of an ingest node: Write's checks and
// redaction, then the stream (behind a spool in dir when dir is set).
func ingestNode(t *testing.T, c *cluster.Conn, dir string) (*ingest.Pipeline, *ingest.Spool) {
	t.Helper()
	var target agenttrail.Appender = cluster.NewPublisher(c)
	var spool *ingest.Spool
	if dir != "" {
		var err error
		spool, err = ingest.OpenSpool(target, ingest.SpoolConfig{Dir: dir, MaxBackoff: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { spool.Close() })
		target = spool
		running(t, spool.Run)
	}
	p := ingest.New(target, ingest.Config{})
	running(t, p.Run)
	return p, spool
}

// writerNode is a writer of c's stream into st.
func writerNode(t *testing.T, c *cluster.Conn, st agenttrail.Appender, dsn string, wrap func(cluster.Committer) cluster.Committer) *cluster.Writer {
	t.Helper()
	p := ingest.New(st, ingest.Config{})
	stopPipeline := running(t, p.Run)
	var commit cluster.Committer = p
	if wrap != nil {
		commit = wrap(p)
	}
	w := cluster.NewWriter(c, commit, cluster.NewPGLock(dsn), cluster.WriterConfig{FetchWait: 200 * time.Millisecond, LockPoll: 500 * time.Millisecond, AckWait: 2 * time.Second})
	_ = stopPipeline
	return w
}

func events(prefix string, n int) []agenttrail.Event {
	evs := make([]agenttrail.Event, n)
	for i := range evs {
		evs[i] = agenttrail.Event{
			ID: fmt.Sprintf("%s-%05d", prefix, i), ActorType: "agent", ActorID: "a1",
			Source: agenttrail.SourceShell, Action: "exec", Result: agenttrail.ResultSuccess,
			Description: fmt.Sprintf("curl -H 'Authorization: Bearer sk-ant-api03-%040d'", i),
		}
	}
	return evs
}

// stored returns how many events of org the store holds, by id, failing
// on an id stored twice.
func stored(t *testing.T, st agenttrail.Store) map[string]agenttrail.Event {
	t.Helper()
	out := map[string]agenttrail.Event{}
	q := agenttrail.Query{Limit: 1000, Sort: agenttrail.SortSeq}
	for {
		page, err := st.Query(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range page.Events {
			if _, dup := out[ev.ID]; dup {
				t.Errorf("event %s stored twice", ev.ID)
			}
			out[ev.ID] = ev
		}
		if page.Next == nil || len(page.Events) == 0 {
			return out
		}
		q.After = page.Next
	}
}

var waitFor = clustertest.WaitFor

// failOnce commits its first batch and then reports a failure, as a writer
// does that dies between the commit and the acknowledgement: JetStream
// redelivers the batch, and the store must not store it twice.
type failOnce struct {
	cluster.Committer
	failed atomic.Bool
}

func (f *failOnce) Commit(ctx context.Context, evs []agenttrail.Event) (agenttrail.AppendResult, []ingest.Rejection, error) {
	res, rej, err := f.Committer.Commit(ctx, evs)
	if err == nil && f.failed.CompareAndSwap(false, true) {
		return res, rej, errors.New("the writer died before acknowledging")
	}
	return res, rej, err
}

// exactlyOnce posts events through an ingest node's write path into the
// stream and checks that the writer stores each exactly once, redacted,
// although the first batch it committed was delivered twice.
func exactlyOnce(t *testing.T, natsURL string) {
	dsn := clustertest.Postgres(t)
	stream := clustertest.Unique("T")
	clustertest.DeleteStreamAtEnd(t, natsURL, stream)
	c := connect(t, natsURL, stream)
	st := openStore(t, dsn)
	p, _ := ingestNode(t, c, "")
	var f *failOnce
	w := writerNode(t, c, st, dsn, func(c cluster.Committer) cluster.Committer { f = &failOnce{Committer: c}; return f })
	running(t, w.Run)

	const n = 500
	evs := events("e", n)
	bad := agenttrail.Event{ID: "bad", ActorType: "nobody"}
	res, err := p.Write(t.Context(), append(evs[:n:n], bad), ingest.Scope{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted() != n || len(res.Rejected) != 1 || res.Rejected[0].Index != n {
		t.Fatalf("Write = %+v, want %d accepted and the bad event rejected", res, n)
	}
	// Sent again, in a batch of their own: a message JetStream has not
	// seen, whose events the store deduplicates.
	if _, err := p.Write(t.Context(), events("e", 10), ingest.Scope{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every event stored", 60*time.Second, func() bool { return len(stored(t, st)) >= n })
	if !f.failed.Load() {
		t.Fatal("no batch was redelivered")
	}
	// The redelivered batch is deduplicated by the store, not JetStream.
	waitFor(t, "the consumer has nothing pending", 30*time.Second, func() bool {
		s := c.Status(t.Context())
		return s.Consumer && s.Pending == 0 && s.AckPending == 0
	})
	got := stored(t, st)
	if len(got) != n {
		t.Fatalf("stored %d events, want %d", len(got), n)
	}
	for id, ev := range got {
		if strings.Contains(ev.Description, "sk-ant-api03-") {
			t.Fatalf("event %s stored unredacted: %q", id, ev.Description)
		}
	}
	if _, ok := got["bad"]; ok {
		t.Fatal("the rejected event was stored")
	}
}

// TestIngestToWriterExactlyOnce runs exactlyOnce on a NATS server run in
// the test's process.
func TestIngestToWriterExactlyOnce(t *testing.T) {
	exactlyOnce(t, clustertest.StartNATS(t).URL())
}

// TestMachineNATS runs exactlyOnce on the machine's NATS server
// (AGENTTRAIL_TEST_NATS), on a stream of its own.
func TestMachineNATS(t *testing.T) {
	exactlyOnce(t, clustertest.MachineNATS(t))
}

// TestStandbyTakesOver runs two writers on one store while events keep
// coming: one is active, the other stands by; when the active one stops,
// the standby takes over within 10 s and every event acknowledged to the
// senders is stored exactly once.
func TestStandbyTakesOver(t *testing.T) {
	dsn := clustertest.Postgres(t)
	natsURL := clustertest.StartNATS(t).URL()
	stream := clustertest.Unique("T")
	st := openStore(t, dsn)
	p, _ := ingestNode(t, connect(t, natsURL, stream), "")
	w1 := writerNode(t, connect(t, natsURL, stream), st, dsn, nil)
	w2 := writerNode(t, connect(t, natsURL, stream), st, dsn, nil)
	stop1 := running(t, w1.Run)
	stop2 := running(t, w2.Run)
	waitFor(t, "a writer is active", 10*time.Second, func() bool { return w1.Active() || w2.Active() })
	active, standby, stopActive := w1, w2, stop1
	if w2.Active() {
		active, standby, stopActive = w2, w1, stop2
	}
	time.Sleep(time.Second) // a standby's polls in between
	if standby.Active() {
		t.Fatal("both writers are active")
	}

	// Senders: batches until told to stop, counting what was acknowledged.
	var acked sync.Map
	var sent atomic.Int64
	sendCtx, stopSending := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for s := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := 0; sendCtx.Err() == nil && b < 400; b++ {
				evs := events(fmt.Sprintf("s%d-b%03d", s, b), 20)
				res, err := p.Write(t.Context(), evs, ingest.Scope{})
				if err != nil || res.Accepted() != len(evs) {
					continue // not acknowledged: the sender would retry
				}
				for _, ev := range evs {
					acked.Store(ev.ID, true)
				}
				sent.Add(int64(len(evs)))
				time.Sleep(10 * time.Millisecond)
			}
		}()
	}
	waitFor(t, "some events sent", 30*time.Second, func() bool { return sent.Load() >= 400 })
	stopActive()
	if active.Active() {
		t.Fatal("the stopped writer still reports itself active")
	}
	waitFor(t, "the standby takes over", 10*time.Second, standby.Active)
	waitFor(t, "more events sent after the takeover", 30*time.Second, func() bool { return sent.Load() >= 1200 })
	stopSending()
	wg.Wait()

	var want int
	acked.Range(func(any, any) bool { want++; return true })
	waitFor(t, "every acknowledged event stored", 60*time.Second, func() bool { return len(stored(t, st)) >= want })
	got := stored(t, st)
	acked.Range(func(id, _ any) bool {
		if _, ok := got[id.(string)]; !ok {
			t.Errorf("acknowledged event %s was not stored", id)
		}
		return true
	})
	t.Logf("%d events acknowledged, %d stored", want, len(got))
}

// TestIngestSpoolsWhileNATSIsDown stops NATS under an ingest node: its
// writes are spooled (accepted, durable on the node's disk), and when NATS
// is back the spool replays them into the stream and the writer stores
// them, each once.
func TestIngestSpoolsWhileNATSIsDown(t *testing.T) {
	dsn := clustertest.Postgres(t)
	nats := clustertest.StartNATS(t)
	stream := clustertest.Unique("T")
	st := openStore(t, dsn)
	c := connect(t, nats.URL(), stream)
	p, spool := ingestNode(t, c, t.TempDir())
	w := writerNode(t, connect(t, nats.URL(), stream), st, dsn, nil)
	running(t, w.Run)

	if res, err := p.Write(t.Context(), events("before", 50), ingest.Scope{}); err != nil || res.Accepted() != 50 {
		t.Fatalf("Write with NATS up = %+v, %v", res, err)
	}
	nats.Stop()
	waitFor(t, "the node sees NATS down", 10*time.Second, func() bool { return c.Ping(t.Context()) != nil })
	var spooled int
	for b := range 5 {
		res, err := p.Write(t.Context(), events(fmt.Sprintf("down%d", b), 40), ingest.Scope{})
		if err != nil || res.Accepted() != 40 {
			t.Fatalf("Write with NATS down = %+v, %v; want every event accepted into the spool", res, err)
		}
		spooled += res.Spooled
	}
	if s := spool.Status(); s.Batches == 0 {
		t.Fatalf("spool status %+v: nothing spooled while NATS was down", s)
	}
	nats.Start()
	waitFor(t, "every event stored after NATS came back", 60*time.Second, func() bool { return len(stored(t, st)) >= 250 })
	if got := len(stored(t, st)); got != 250 {
		t.Fatalf("stored %d events, want 250", got)
	}
	waitFor(t, "the spool drained", 10*time.Second, func() bool { return spool.Status().Batches == 0 })
}

// TestBatchIsFewMessages publishes a batch of two orgs' events to a server
// whose max_payload is small: each message holds events of one org, on
// that org's subject, and stays under max_payload; the same batch
// published again adds no message (its ids are the same); the writer
// stores every event once.
func TestBatchIsFewMessages(t *testing.T) {
	dsn := clustertest.Postgres(t)
	const maxPayload = 16 << 10
	n := clustertest.StartNATSWith(t, func(o *natsserver.Options) { o.MaxPayload = maxPayload })
	stream := clustertest.Unique("T")
	c := connect(t, n.URL(), stream)
	evs := events("m", 300)
	for i := range evs {
		evs[i].Org = []string{"org-a", "org.b"}[i%2]
		evs[i].Time = time.Now().UTC().Truncate(time.Millisecond)
	}
	p := cluster.NewPublisher(c)
	for range 2 {
		if res, err := p.Append(t.Context(), evs); err != nil || res.Spooled != len(evs) {
			t.Fatalf("Append = %+v, %v", res, err)
		}
	}
	st := c.Status(t.Context())
	if st.Messages < 4 || st.Messages > 30 {
		t.Fatalf("the stream holds %d messages for %d events of 2 orgs twice, want a few per org", st.Messages, len(evs))
	}

	s := rawStream(t, n.URL(), stream)
	seen := 0
	for seq := uint64(1); seq <= st.Messages; seq++ {
		m, err := s.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Data) > maxPayload {
			t.Errorf("message %d is %d bytes, over max_payload", seq, len(m.Data))
		}
		for line := range strings.Lines(string(m.Data)) {
			var ev agenttrail.Event
			if err := json.Unmarshal([]byte(line), &ev); err != nil {
				t.Fatalf("message %d: %v", seq, err)
			}
			if want := c.Subject(ev.Org); m.Subject != want {
				t.Errorf("event %s of org %s is in a message on %s, want %s", ev.ID, ev.Org, m.Subject, want)
			}
			seen++
		}
	}
	if seen != len(evs) {
		t.Errorf("the stream's messages hold %d events, want %d", seen, len(evs))
	}

	store := openStore(t, dsn)
	running(t, writerNode(t, connect(t, n.URL(), stream), store, dsn, nil).Run)
	waitFor(t, "every event stored", 60*time.Second, func() bool { return len(stored(t, store)) >= len(evs) })
	got := stored(t, store)
	for _, ev := range evs {
		if g, ok := got[ev.ID]; !ok || g.Org != ev.Org {
			t.Errorf("event %s of org %s: stored %v, org %q", ev.ID, ev.Org, ok, g.Org)
		}
	}
}
