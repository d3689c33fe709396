package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/client"
	"github.com/agenttrail/agenttrail/internal/clustertest"
	"github.com/agenttrail/agenttrail/postgres"
)

// TestClusterSurvivesKills runs the cluster as processes: two ingest
// nodes and two writers on one NATS server and one PostgreSQL store. Under
// sustained ingest through the SDK (both ingest nodes as --server), the
// active writer is SIGKILLed, then one ingest node: the standby takes
// over, the SDK fails over, and every event the SDK was acknowledged is
// stored exactly once.
func TestClusterSurvivesKills(t *testing.T) {
	dsn := clustertest.Postgres(t)
	natsURL := clustertest.StartNATS(t).URL()
	common := []string{"--nats", natsURL, "--nats-stream", clustertest.Unique("E"), "--store", dsn, "--signing-key", writeSigningKey(t)}

	// The nodes share their tokens through the store: the first one
	// creates the admin token, which works on all. Its file is copied
	// only because startServe reads the token from a node's data
	// directory.
	first := t.TempDir()
	seed := func() string {
		dir := t.TempDir()
		b, err := os.ReadFile(filepath.Join(first, "admin.token"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "admin.token"), b, 0o600); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	in1 := startServe(t, freeAddr(t), first, append([]string{"--role", "ingest"}, common...)...)
	in2 := startServe(t, freeAddr(t), seed(), append([]string{"--role", "ingest"}, common...)...)
	w1 := startServe(t, freeAddr(t), seed(), append([]string{"--role", "writer"}, common...)...)
	w2 := startServe(t, freeAddr(t), seed(), append([]string{"--role", "writer"}, common...)...)
	active := func(p *process) bool {
		resp, err := http.Get(p.url + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(b), "\nagenttrail_writer_active 1\n")
	}
	waitUntil(t, "a writer is active", 20*time.Second, func() bool { return active(w1) || active(w2) })
	act, standby := w1, w2
	if active(w2) {
		act, standby = w2, w1
	}

	c := client.New(in1.url+","+in2.url, client.WithToken(in1.token))
	defer c.CloseIdleConnections()
	var mu sync.Mutex
	acked := map[string]bool{}
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for b := 0; ctx.Err() == nil && b < 3000; b++ {
			evs := make([]agenttrail.Event, 20)
			for i := range evs {
				evs[i] = agenttrail.Event{ID: fmt.Sprintf("k%04d-%02d", b, i), ActorType: "agent", ActorID: "a",
					Source: agenttrail.SourceShell, Action: "exec", Result: agenttrail.ResultSuccess}
			}
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			res, err := c.Ingest(rctx, evs)
			cancel()
			if err != nil || res.Accepted != len(evs) {
				continue // not acknowledged
			}
			mu.Lock()
			for _, e := range evs {
				acked[e.ID] = true
			}
			mu.Unlock()
			time.Sleep(5 * time.Millisecond)
		}
	}()
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	waitUntil(t, "events acknowledged", 30*time.Second, func() bool { return count() >= 500 })
	if active(standby) {
		t.Fatal("both writers are active")
	}
	killed := time.Now()
	act.cmd.Process.Kill() // SIGKILL: no shutdown, its lock connection just dies
	act.cmd.Wait()
	waitUntil(t, "the standby takes over", 15*time.Second, func() bool { return active(standby) })
	t.Logf("the standby was active %v after the active writer was killed", time.Since(killed).Round(10*time.Millisecond))
	waitUntil(t, "more events acknowledged", 30*time.Second, func() bool { return count() >= 1500 })
	in1.cmd.Process.Kill() // the ingest node the SDK uses
	in1.cmd.Wait()
	n := count()
	waitUntil(t, "events acknowledged after an ingest node died", 30*time.Second, func() bool { return count() >= n+500 })
	stop()
	<-done

	st, err := postgres.Open(t.Context(), dsn, postgres.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	want := count()
	var got map[string]int
	waitUntil(t, "every acknowledged event stored", 60*time.Second, func() bool {
		got = map[string]int{}
		q := agenttrail.Query{Limit: 1000, Sort: agenttrail.SortSeq}
		for {
			page, err := st.Query(t.Context(), q)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range page.Events {
				if strings.HasPrefix(e.ID, "k") {
					got[e.ID]++
				}
			}
			if page.Next == nil || len(page.Events) == 0 {
				break
			}
			q.After = page.Next
		}
		return len(got) >= want
	})
	mu.Lock()
	defer mu.Unlock()
	for id := range acked {
		if got[id] != 1 {
			t.Errorf("acknowledged event %s stored %d times", id, got[id])
		}
	}
	t.Logf("%d events acknowledged, %d stored", want, len(got))
}

func waitUntil(t *testing.T, what string, d time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
