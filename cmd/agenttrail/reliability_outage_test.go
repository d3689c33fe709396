package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/client"
	"github.com/agenttrail/agenttrail/wire"
	"go.uber.org/goleak"
)

// postgresOutage is how long TestPostgresOutage keeps PostgreSQL down.
const postgresOutage = 30 * time.Second

// TestServerKilledDuringIngest kills the server with SIGKILL while an SDK
// Recorder with a spool records steadily, restarts it, and checks that
// every event recorded is stored exactly once.
func TestServerKilledDuringIngest(t *testing.T) {
	defer goleak.VerifyNone(t, ignoreServeHelpers()...)
	addr, data := freeAddr(t), t.TempDir()
	p1 := startServe(t, addr, data)
	c := p1.client()
	rec, err := client.NewRecorder(c, client.RecorderConfig{SpoolDir: t.TempDir(), ActorID: "sustained",
		Heartbeat: client.HeartbeatOff, FlushInterval: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	wait := recordLoop(rec, "sustained", 4, time.Millisecond, stop)
	waitStat(t, rec, "3000 events delivered", func(s client.RecorderStats) bool { return s.Sent >= 3000 })
	if err := p1.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p1.cmd.Wait()
	time.Sleep(time.Second) // the Recorder spools meanwhile
	p2 := startServe(t, addr, data)
	time.Sleep(2 * time.Second)
	close(stop)
	ids, _ := wait()
	drainRecorder(t, rec, c)
	s := rec.Stats()
	if s.DroppedTotal() != 0 || s.Rejected != 0 {
		t.Fatalf("Recorder stats %+v: want nothing dropped or rejected", s)
	}
	c2 := p2.client()
	defer c2.CloseIdleConnections()
	checkOnce(t, ids, eventsOf(t, c2, agenttrail.Filter{ActorID: []string{"sustained"}}))
	t.Logf("server SIGKILLed mid-stream: %d events recorded, %d spooled by the SDK, all stored once", len(ids), s.Spooled)
}

// ignoreServeHelpers makes goleak check the goroutines of the code under
// test (the Recorder's, the client's connections) and not those startServe
// leaves until the test's cleanup: the stderr copier of the serve process
// and the connections of its readiness client.
func ignoreServeHelpers() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreCurrent(),
		goleak.IgnoreAnyFunction("os/exec.(*Cmd).Start.func2"),
		goleak.IgnoreAnyFunction("os/exec.(*Cmd).writerDescriptor.func1"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	}
}

func waitStat(t *testing.T, rec *client.Recorder, what string, cond func(client.RecorderStats) bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond(rec.Stats()) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s after 60 s: %+v", what, rec.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPostgresOutage stops the server's PostgreSQL for postgresOutage during
// steady ingest through an SDK Recorder: no Record call blocks, the server
// keeps acknowledging into its spool, and once PostgreSQL is back every
// event is stored exactly once. Then it stops PostgreSQL again, kills the
// server with SIGKILL while its spool holds batches, and checks that the
// restarted server replays them.
func TestPostgresOutage(t *testing.T) {
	pg := startPostgres(t)
	addr, data := freeAddr(t), t.TempDir()
	p := startServe(t, addr, data, "--store", pg.URL())
	c := p.client()
	rec, err := client.NewRecorder(c, client.RecorderConfig{SpoolDir: t.TempDir(), ActorID: "outage",
		Heartbeat: client.HeartbeatOff, FlushInterval: 50 * time.Millisecond, MaxBackoff: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	wait := recordLoop(rec, "outage", 4, 2*time.Millisecond, stop)
	waitStat(t, rec, "2000 events delivered", func(s client.RecorderStats) bool { return s.Sent >= 2000 })

	pg.stop(t)
	down := time.Now()
	waitReady(t, p.url, "degraded") // the spool takes ingest meanwhile
	time.Sleep(postgresOutage - time.Since(down))
	sentDuringOutage := rec.Stats().Sent
	pg.start(t)
	time.Sleep(3 * time.Second)
	close(stop)
	ids, times := wait()
	drainRecorder(t, rec, c)
	waitReady(t, p.url, "ok")

	s := rec.Stats()
	if s.DroppedTotal() != 0 || s.Rejected != 0 {
		t.Fatalf("Recorder stats %+v: want nothing dropped or rejected", s)
	}
	checkOnce(t, ids, eventsOf(t, c, agenttrail.Filter{ActorID: []string{"outage"}}))
	spooled := metric(t, p.url, "agenttrail_ingest_spooled_total")
	replayed := metric(t, p.url, "agenttrail_ingest_replayed_total") + metric(t, p.url, "agenttrail_ingest_replayed_duplicates_total")
	if spooled == 0 || replayed != spooled {
		t.Errorf("server spooled %v events and replayed %v, want some, all replayed", spooled, replayed)
	}
	slices.Sort(times)
	p99, worst := times[len(times)*99/100], times[len(times)-1]
	t.Logf("PostgreSQL down %v: %d events recorded, 0 lost, 0 doubled; server spooled %v and replayed them; SDK spooled %d; Record p99 %v, max %v",
		postgresOutage, len(ids), spooled, s.Spooled, p99, worst)
	if sentDuringOutage == 0 {
		t.Errorf("nothing was acknowledged by the time PostgreSQL came back")
	}
	// Record must never wait for the network or the disk; a scheduler
	// hiccup on a loaded machine is far below this.
	if worst > time.Second {
		t.Errorf("a Record call took %v: Record blocked", worst)
	}

	// The server dies while its spool holds batches: the next one replays.
	pg.stop(t)
	batch := make([]agenttrail.Event, 1000)
	for i := range batch {
		batch[i] = agenttrail.Event{ID: agenttrail.NewID(time.Now()), ActorType: agenttrail.ActorAgent, ActorID: "spooled",
			Source: "shell", Action: "shell_exec", Result: agenttrail.ResultSuccess}
	}
	var ingested []string
	for i := 0; i < len(batch); i += 100 {
		res, err := c.Ingest(context.Background(), batch[i:i+100])
		if err != nil || res.Accepted != 100 {
			t.Fatalf("Ingest with PostgreSQL down = %+v, %v; want 100 accepted into the spool", res, err)
		}
		for _, e := range batch[i : i+100] {
			ingested = append(ingested, e.ID)
		}
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.cmd.Wait()
	pg.start(t)
	p2 := startServe(t, addr, data, "--store", pg.URL())
	waitReady(t, p2.url, "ok")
	checkOnce(t, ingested, eventsOf(t, p2.client(), agenttrail.Filter{ActorID: []string{"spooled"}}))
}

// readyz returns /readyz's status and reason.
func readyz(t *testing.T, url string) (status, reason string) {
	t.Helper()
	resp, err := http.Get(url + "/readyz")
	if err != nil {
		return "unreachable", err.Error()
	}
	defer resp.Body.Close()
	var st struct {
		Status string `json:"status"`
		Reason string `json:"reason"`
		Detail string `json:"detail"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&st)
	if resp.StatusCode != http.StatusOK {
		return strconv.Itoa(resp.StatusCode), st.Detail
	}
	return st.Status, st.Reason
}

func waitReady(t *testing.T, url, want string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		st, reason := readyz(t, url)
		if st == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz = %s (%s) after 2 min, want %s", st, reason, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// metric reads one unlabeled counter from /metrics.
func metric(t *testing.T, url, name string) float64 {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	t.Fatalf("/metrics has no %s", name)
	return 0
}

// TestHeartbeatGap runs two Recorders of one agent, one after the other
// with a pause between them: each closes cleanly, so the pause is no gap.
// Then one producer's heartbeats skip three of their intervals, which
// /v1/gaps and `agenttrail gaps` report between exactly the heartbeat
// before and the one after.
func TestHeartbeatGap(t *testing.T) {
	defer goleak.VerifyNone(t, ignoreServeHelpers()...)
	const iv = 200 * time.Millisecond
	p := startServe(t, freeAddr(t), t.TempDir())
	c := p.client()
	defer c.CloseIdleConnections()
	beat := func() {
		rec, err := client.NewRecorder(c, client.RecorderConfig{ActorID: "hb-agent", Heartbeat: iv, FlushInterval: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * iv)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := rec.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	beat()
	time.Sleep(4 * iv)
	beat()
	c.CloseIdleConnections()
	if stops := eventsOf(t, c, agenttrail.Filter{ActorID: []string{"hb-agent"}, Action: []string{agenttrail.ActionStop}}); len(stops) != 2 {
		t.Fatalf("%d stop events, want one per Recorder", len(stops))
	}
	g, err := c.Gaps(context.Background(), agenttrail.Filter{ActorID: []string{"hb-agent"}, Since: start.Add(-time.Minute)}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Heartbeats) != 0 {
		t.Errorf("/v1/gaps heartbeats after two clean runs = %+v, want none", g.Heartbeats)
	}

	// One producer, heartbeats every 200 ms stating so, the 4th to 6th
	// missing, and a clean stop at the end.
	t0 := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	var hbs []agenttrail.Event
	for _, i := range []int{0, 1, 2, 3, 7, 8, 9, 10} {
		action := agenttrail.ActionHeartbeat
		if i == 10 {
			action = agenttrail.ActionStop
		}
		hbs = append(hbs, agenttrail.Event{
			ID: fmt.Sprintf("hb-gap-%d", i), Time: t0.Add(time.Duration(i) * iv), ActorType: agenttrail.ActorAgent,
			ActorID: "hb-agent", Source: agenttrail.SourceAgent, Action: action, Result: agenttrail.ResultSuccess,
			ProducerID: "hb-producer", ProducerSeq: int64(len(hbs) + 1), Metadata: []byte(`{"interval_ms":200}`),
		})
	}
	if res, err := c.Ingest(context.Background(), hbs); err != nil || res.Accepted != len(hbs) {
		t.Fatalf("Ingest heartbeats = %+v, %v", res, err)
	}
	want := agenttrail.HeartbeatGap{Org: agenttrail.DefaultOrg, ActorID: "hb-agent", ProducerID: "hb-producer",
		From: t0.Add(3 * iv), To: t0.Add(7 * iv), Missed: 3}

	// Exactly this gap in a range holding just the two heartbeats around
	// it, and in the whole range.
	narrow := agenttrail.Filter{ActorID: []string{"hb-agent"}, Since: want.From, Until: want.To.Add(time.Millisecond)}
	for _, f := range []agenttrail.Filter{narrow, {ActorID: []string{"hb-agent"}, Since: start.Add(-time.Hour)}} {
		g, err := c.Gaps(context.Background(), f, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(g.Heartbeats) != 1 || g.Heartbeats[0].ProducerID != want.ProducerID || !g.Heartbeats[0].From.Equal(want.From) ||
			!g.Heartbeats[0].To.Equal(want.To) || g.Heartbeats[0].Missed != want.Missed || g.Heartbeats[0].Open {
			t.Errorf("/v1/gaps?%s heartbeats = %+v, want exactly %+v", wire.EncodeFilter(f).Encode(), g.Heartbeats, want)
		}
	}

	out, err := exec.Command(binary, "gaps", "--server", p.url, "--token", p.token, "--actor-id", "hb-agent", "--since", "1h").CombinedOutput()
	if err != nil {
		t.Fatalf("agenttrail gaps: %v\n%s", err, out)
	}
	if from := want.From.UTC().Format("2006-01-02 15:04:05.000"); !strings.Contains(string(out), from) {
		t.Errorf("agenttrail gaps output lacks the gap from %s:\n%s", from, out)
	}
}
