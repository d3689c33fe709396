package cluster_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/cluster"
	"github.com/agenttrail/agenttrail/ingest"
	"github.com/agenttrail/agenttrail/internal/clustertest"
)

// outage is how long the fault tests keep PostgreSQL or NATS away: the
// 30 s the cluster is specified to ride out. AGENTTRAIL_TEST_OUTAGE (a
// duration) shortens it for a quick run while changing the code.
func outage(t *testing.T) time.Duration {
	if s := os.Getenv("AGENTTRAIL_TEST_OUTAGE"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("AGENTTRAIL_TEST_OUTAGE: %v", err)
		}
		return d
	}
	return 30 * time.Second
}

// load is sustained ingest through one ingest node's write path: senders
// that write batches until stopped and remember what was acknowledged.
type load struct {
	acked sync.Map
	n     atomic.Int64
	stop  func()
}

func sustain(t *testing.T, p *ingest.Pipeline, prefix string, senders int) *load {
	l := &load{}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := 0; ctx.Err() == nil; b++ {
				evs := events(fmt.Sprintf("%s%d-%05d", prefix, s, b), 20)
				wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				res, err := p.Write(wctx, evs, ingest.Scope{})
				cancel()
				if err != nil || res.Accepted() != len(evs) {
					time.Sleep(50 * time.Millisecond)
					continue // not acknowledged: the sender would retry
				}
				for _, ev := range evs {
					l.acked.Store(ev.ID, true)
				}
				l.n.Add(int64(len(evs)))
				time.Sleep(10 * time.Millisecond)
			}
		}()
	}
	var once sync.Once
	l.stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(l.stop)
	return l
}

// waitMore waits until n more events than now are acknowledged.
func (l *load) waitMore(t *testing.T, what string, n int64) {
	t.Helper()
	from := l.n.Load()
	waitFor(t, what, 60*time.Second, func() bool { return l.n.Load() >= from+n })
}

// check stops the senders and waits until the store holds every event
// they were acknowledged, each once (stored fails on a duplicate).
func (l *load) check(t *testing.T, st agenttrail.Store) {
	t.Helper()
	l.stop()
	want := int(l.n.Load())
	var got map[string]agenttrail.Event
	waitFor(t, "every acknowledged event stored", 120*time.Second, func() bool {
		got = stored(t, st)
		return len(got) >= want
	})
	l.acked.Range(func(id, _ any) bool {
		if _, ok := got[id.(string)]; !ok {
			t.Errorf("acknowledged event %s was not stored", id)
		}
		return true
	})
	t.Logf("%d events acknowledged, %d stored", want, len(got))
}

// connectR connects to a stream of replicas replicas.
func connectR(t *testing.T, url, stream string, replicas int) *cluster.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	c, err := cluster.Connect(ctx, cluster.Config{URL: url, Stream: stream, Subject: strings.ToLower(stream) + ".events", MaxAge: time.Hour, Replicas: replicas})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.EnsureStream(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// TestNATSNodeKilled runs the stream at three replicas on a cluster of
// three nats-server processes (the official server, built by the test)
// and, under sustained ingest, kills the one that leads the stream with
// SIGKILL: the others elect a new leader, the ingest node spools what it
// could not publish meanwhile, and every acknowledged event is stored
// once.
func TestNATSNodeKilled(t *testing.T) {
	t.Parallel()
	dsn := clustertest.Postgres(t)
	nc := clustertest.StartNATSProcessCluster(t, clustertest.NATSServerBinary(t, binDir), 3)
	stream := clustertest.Unique("T")
	cIn := connectR(t, nc.URL(), stream, 3)
	cW := connectR(t, nc.URL(), stream, 3)
	st := openStore(t, dsn)
	p, _ := ingestNode(t, cIn, t.TempDir())
	running(t, writerNode(t, cW, st, dsn, nil).Run)

	l := sustain(t, p, "n", 2)
	l.waitMore(t, "events acknowledged", 500)
	leader := streamLeader(t, nc.URL(), stream)
	killed := false
	for _, n := range nc.Nodes {
		if n.Name == leader {
			n.Kill()
			killed = true
		}
	}
	if !killed {
		t.Fatalf("the stream's leader %q is none of the cluster's nodes", leader)
	}
	t.Logf("killed %s, the stream's leader, with SIGKILL", leader)
	l.waitMore(t, "events acknowledged after the leader died", 1000)
	l.check(t, st)
}

// binDir holds what the tests build (nats-server); TestMain removes it.
var binDir string

func TestMain(m *testing.M) {
	var err error
	if binDir, err = os.MkdirTemp("", "agenttrail-cluster-test-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(binDir)
	os.Exit(code)
}

func streamLeader(t *testing.T, url, stream string) string {
	t.Helper()
	info := rawStream(t, url, stream).CachedInfo()
	if info.Cluster == nil || info.Cluster.Leader == "" || len(info.Cluster.Replicas) != 2 {
		t.Fatalf("stream %s is not replicated three times: %+v", stream, info.Cluster)
	}
	return info.Cluster.Leader
}

// TestWriterCatchesUpAfterPostgresOutage cuts the writer off PostgreSQL
// (through a proxy: the database itself stays up for others) for the
// outage under sustained ingest: ingest goes on acknowledging into the
// stream, the writer loses its lock and commits nothing, and once the
// database is back it takes the lock again and catches up; every
// acknowledged event is stored once.
func TestWriterCatchesUpAfterPostgresOutage(t *testing.T) {
	t.Parallel()
	dsn := clustertest.Postgres(t)
	proxy := clustertest.StartProxy(t, clustertest.PostgresAddr(t, dsn))
	wdsn := proxy.Through(dsn)
	natsURL := clustertest.StartNATS(t).URL()
	stream := clustertest.Unique("T")
	cIn := connect(t, natsURL, stream)
	st := openStore(t, dsn)
	p, _ := ingestNode(t, cIn, "")
	w := writerNode(t, connect(t, natsURL, stream), openStore(t, wdsn), wdsn, nil)
	running(t, w.Run)

	l := sustain(t, p, "p", 2)
	l.waitMore(t, "events acknowledged", 300)
	// The backlog is read from the writer's consumer: it must exist before
	// the cut, whatever the order in which the writer and ingest started.
	waitFor(t, "the writer consuming", 30*time.Second, func() bool { return cIn.Status(t.Context()).Consumer })
	proxy.Cut()
	cut := time.Now()
	waitFor(t, "the writer sees the database gone", 30*time.Second, func() bool { return !w.Active() })
	during := l.n.Load()
	time.Sleep(time.Until(cut.Add(outage(t))))
	if l.n.Load() <= during {
		t.Fatal("ingest acknowledged nothing while the database was unreachable")
	}
	if s := cIn.Status(t.Context()); s.Pending == 0 {
		t.Errorf("the stream holds no backlog after the outage: %+v", s)
	}
	t.Logf("%d events acknowledged while the database was unreachable for %v", l.n.Load()-during, time.Since(cut).Round(time.Second))
	proxy.Restore()
	waitFor(t, "the writer active again", 30*time.Second, w.Active)
	l.waitMore(t, "events acknowledged after the outage", 300)
	l.check(t, st)
	waitFor(t, "the writer caught up", 60*time.Second, func() bool {
		s := cIn.Status(t.Context())
		return s.Consumer && s.Pending == 0 && s.AckPending == 0
	})
}

// TestIngestRidesOutNATSOutage stops NATS (the only server) for the
// outage under sustained ingest: the ingest node spools and acknowledges
// throughout, and replays the spool into the stream once NATS is back;
// every acknowledged event is stored once.
func TestIngestRidesOutNATSOutage(t *testing.T) {
	t.Parallel()
	dsn := clustertest.Postgres(t)
	n := clustertest.StartNATS(t)
	stream := clustertest.Unique("T")
	cIn := connect(t, n.URL(), stream)
	st := openStore(t, dsn)
	p, spool := ingestNode(t, cIn, t.TempDir())
	running(t, writerNode(t, connect(t, n.URL(), stream), st, dsn, nil).Run)

	l := sustain(t, p, "s", 2)
	l.waitMore(t, "events acknowledged", 300)
	n.Stop()
	down := time.Now()
	during := l.n.Load()
	time.Sleep(time.Until(down.Add(outage(t))))
	if l.n.Load() <= during {
		t.Fatal("ingest acknowledged nothing while NATS was down")
	}
	if s := spool.Status(); s.Batches == 0 {
		t.Errorf("nothing spooled while NATS was down: %+v", s)
	}
	t.Logf("%d events acknowledged into the spool while NATS was down for %v", l.n.Load()-during, time.Since(down).Round(time.Second))
	n.Start()
	l.waitMore(t, "events acknowledged after NATS came back", 300)
	l.check(t, st)
	waitFor(t, "the spool drained", 60*time.Second, func() bool { return spool.Status().Batches == 0 })
}

// rawStream is the stream on a connection of its own, closed when the
// test ends: to look at the stream as NATS sees it.
func rawStream(t *testing.T, url, stream string) jetstream.Stream {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(t.Context(), stream)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
