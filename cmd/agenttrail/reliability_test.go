package main

import (
	"bufio"
	"bytes"
	"context"
	byteorder "encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/client"
)

// agentStats is one line the test agent (testdata/agent) prints.
type agentStats struct {
	ProducerID string `json:"producer_id"`
	Recorded   int64  `json:"recorded"`
	Sent       int64  `json:"sent"`
	Spooled    int64  `json:"spooled"`
	Replayed   int64  `json:"replayed"`
	Dropped    int64  `json:"dropped"`
	Done       bool   `json:"done"`
}

// agentProc is a running test agent.
type agentProc struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	lines  chan struct{} // closed when stdout ends

	mu   sync.Mutex
	last agentStats
}

// buildAgent builds the test agent, a main package under testdata.
func buildAgent(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "agent")
	out, err := exec.Command("go", "build", "-o", bin, "./testdata/agent").CombinedOutput()
	if err != nil {
		t.Fatalf("build the test agent: %v\n%s", err, out)
	}
	return bin
}

func startAgent(t *testing.T, bin string, args ...string) *agentProc {
	t.Helper()
	a := &agentProc{cmd: exec.Command(bin, args...), stderr: &bytes.Buffer{}, lines: make(chan struct{})}
	a.cmd.Stderr = &syncWriter{w: a.stderr}
	out, err := a.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(a.lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var s agentStats
			if json.Unmarshal(sc.Bytes(), &s) == nil {
				a.mu.Lock()
				a.last = s
				a.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		if a.cmd.ProcessState == nil {
			a.cmd.Process.Kill()
			<-a.lines
			a.cmd.Wait()
		}
	})
	return a
}

func (a *agentProc) stats() agentStats {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.last
}

func (a *agentProc) waitFor(t *testing.T, what string, cond func(agentStats) bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond(a.stats()) {
		if time.Now().After(deadline) {
			t.Fatalf("agent: no %s after 60 s; last stats %+v\nstderr:\n%s", what, a.stats(), a.stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// eventsOf pages through the events f matches in commit order.
func eventsOf(t *testing.T, c *client.Client, f agenttrail.Filter) []agenttrail.Event {
	t.Helper()
	var out []agenttrail.Event
	opts := client.QueryOptions{Sort: agenttrail.SortSeq, Limit: agenttrail.MaxLimit}
	for {
		page, err := c.Query(context.Background(), f, opts)
		if err != nil {
			t.Fatalf("Query: %v", err)
		}
		out = append(out, page.Events...)
		if len(page.Events) == 0 {
			return out
		}
		opts.Cursor = page.NextCursor
	}
}

// countIDs counts stored events by id.
func countIDs(evs []agenttrail.Event) map[string]int {
	n := make(map[string]int, len(evs))
	for _, e := range evs {
		n[e.ID]++
	}
	return n
}

// TestAgentKilledMidStream kills an agent with SIGKILL while it spools
// (its server is down), restarts it on the same spool directory once the
// server is back, and checks the SDK's promise: what was spooled arrives,
// and what was lost in memory shows as exactly one sequence gap, from the
// last delivered producer_seq to the last one the killed run took (its
// counter, mapped from producer.seq, survives the process): exactly the
// events lost, no more.
func TestAgentKilledMidStream(t *testing.T) {
	const queueSize, batchSize = 1000, 100 // the agent's; the restart skips queueSize+3*batchSize
	agent := buildAgent(t)
	addr, data, spool := freeAddr(t), t.TempDir(), t.TempDir()
	p1 := startServe(t, addr, data)
	args := []string{"-server", p1.url, "-token", p1.token, "-spool", spool,
		"-queue", fmt.Sprint(queueSize), "-batch", fmt.Sprint(batchSize), "-rate", "2000"}
	a1 := startAgent(t, agent, args...)
	a1.waitFor(t, "1000 events delivered", func(s agentStats) bool { return s.Sent >= 1000 })

	// The server goes away: the agent spools.
	if err := p1.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	p1.cmd.Wait()
	a1.waitFor(t, "500 events spooled", func(s agentStats) bool { return s.Spooled >= 500 })
	if err := a1.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-a1.lines
	a1.cmd.Wait()
	before := a1.stats()
	var state struct {
		ProducerID string `json:"producer_id"`
		Seq        int64  `json:"seq"`
		Clean      bool   `json:"clean"`
	}
	b, err := os.ReadFile(filepath.Join(spool, "producer.json"))
	if err != nil || json.Unmarshal(b, &state) != nil || state.Clean || state.ProducerID != before.ProducerID {
		t.Fatalf("producer state after SIGKILL = %s (%v), want producer %s, not clean", b, err, before.ProducerID)
	}
	counter, err := os.ReadFile(filepath.Join(spool, "producer.seq"))
	if err != nil || len(counter) != 8 {
		t.Fatalf("producer.seq after SIGKILL = %x (%v), want the 8-byte counter", counter, err)
	}
	lastTaken := int64(byteorder.NativeEndian.Uint64(counter))
	if lastTaken < state.Seq || lastTaken > state.Seq+queueSize+3*batchSize {
		t.Fatalf("the killed run's counter = %d, want between its last saved %d and that plus what memory can hold", lastTaken, state.Seq)
	}

	p2 := startServe(t, addr, data)
	const more = 300
	a2 := startAgent(t, agent, append(args, "-server", p2.url, "-n", fmt.Sprint(more), "-drain")...)
	<-a2.lines
	if err := a2.cmd.Wait(); err != nil {
		t.Fatalf("restarted agent: %v\nstderr:\n%s", err, a2.stderr)
	}
	after := a2.stats()
	if !after.Done || after.ProducerID != before.ProducerID || after.Dropped != 0 || after.Replayed < before.Spooled {
		t.Fatalf("restarted agent = %+v, want done, producer %s, nothing dropped, at least the %d spooled events replayed", after, before.ProducerID, before.Spooled)
	}

	c := p2.client()
	evs := eventsOf(t, c, agenttrail.Filter{ProducerID: []string{before.ProducerID}})
	seqs := map[int64]int{}
	for id, n := range countIDs(evs) {
		if n != 1 {
			t.Errorf("event %s stored %d times", id, n)
		}
	}
	for _, e := range evs {
		seqs[e.ProducerSeq]++
	}
	skipTo := lastTaken // the killed run's last producer_seq: the restarted one numbers after it
	var lastBefore int64
	for s := range seqs {
		if s <= skipTo && s > lastBefore {
			lastBefore = s
		}
	}
	// What the first run delivered or spooled before its last report
	// is stored: producer_seq 1 to at least that count.
	if lastBefore < before.Sent+before.Spooled {
		t.Errorf("highest producer_seq stored from the killed run = %d, want at least the %d it had delivered or spooled", lastBefore, before.Sent+before.Spooled)
	}
	for s := int64(1); s <= lastBefore; s++ {
		if seqs[s] != 1 {
			t.Fatalf("producer_seq %d stored %d times, want once", s, seqs[s])
		}
	}
	for s := skipTo + 1; s <= skipTo+more; s++ {
		if seqs[s] != 1 {
			t.Fatalf("producer_seq %d of the restarted run stored %d times, want once", s, seqs[s])
		}
	}
	if want := int(lastBefore) + more; len(seqs) != want {
		t.Fatalf("%d distinct producer_seqs stored, want %d", len(seqs), want)
	}

	gaps, err := c.Gaps(context.Background(), agenttrail.Filter{ProducerID: []string{before.ProducerID}, Since: time.Now().Add(-time.Hour)}, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []agenttrail.SequenceGap{{Org: agenttrail.DefaultOrg, ProducerID: before.ProducerID, From: lastBefore + 1, To: skipTo}}
	if !slices.Equal(gaps.Sequences, want) {
		t.Fatalf("/v1/gaps sequences = %+v, want exactly %+v", gaps.Sequences, want)
	}
	t.Logf("killed agent: %d events delivered, %d spooled before SIGKILL; stored 1..%d, gap %d-%d (%d events lost in memory), then %d after restart",
		before.Sent, before.Spooled, lastBefore, lastBefore+1, skipTo, skipTo-lastBefore, more)

	// The CLI shows the same gap.
	cmd := exec.Command(binary, "gaps", "--server", p2.url, "--token", p2.token, "--producer-id", before.ProducerID, "--since", "1h")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("agenttrail gaps: %v\n%s", err, out)
	}
	if row := fmt.Sprintf("%d-%d", lastBefore+1, skipTo); !strings.Contains(string(out), before.ProducerID) || !strings.Contains(string(out), row) {
		t.Errorf("agenttrail gaps output lacks producer %s and range %s:\n%s", before.ProducerID, row, out)
	}
}

// recordLoop records events with ids it chooses from workers goroutines,
// each one event every pace, until stop is closed. It returns every id it
// recorded and every Record call's duration, once stop is closed and the
// workers are done.
func recordLoop(rec *client.Recorder, actor string, workers int, pace time.Duration, stop <-chan struct{}) func() ([]string, []time.Duration) {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		ids   []string
		times []time.Duration
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var myIDs []string
			var myTimes []time.Duration
			tick := time.NewTicker(pace)
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case <-stop:
					mu.Lock()
					ids = append(ids, myIDs...)
					times = append(times, myTimes...)
					mu.Unlock()
					return
				case <-tick.C:
				}
				now := time.Now()
				e := agenttrail.Event{ID: agenttrail.NewID(now), ActorID: actor, Source: "shell", Action: "shell_exec",
					Result: agenttrail.ResultSuccess, ResourceID: fmt.Sprint(i)}
				start := time.Now()
				rec.Record(context.Background(), e)
				myTimes = append(myTimes, time.Since(start))
				myIDs = append(myIDs, e.ID)
			}
		}()
	}
	return func() ([]string, []time.Duration) {
		wg.Wait()
		return ids, times
	}
}

// drainRecorder waits until rec has sent everything it holds, then closes
// it.
func drainRecorder(t *testing.T, rec *client.Recorder, c *client.Client) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		s := rec.Stats()
		if s.Queued == 0 && s.SpoolPending == 0 && s.Sent+s.DroppedTotal()+s.Rejected >= s.Recorded {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the recorder did not deliver everything in 2 min: %+v", s)
		}
		time.Sleep(20 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := rec.Close(ctx); err != nil {
		t.Fatalf("Recorder.Close: %v", err)
	}
	c.CloseIdleConnections()
}

// checkOnce fails unless every id in recorded is stored exactly once among
// stored, and nothing else is.
func checkOnce(t *testing.T, recorded []string, stored []agenttrail.Event) {
	t.Helper()
	n := countIDs(stored)
	lost, doubled := 0, 0
	for _, id := range recorded {
		switch n[id] {
		case 0:
			lost++
		case 1:
		default:
			doubled++
		}
	}
	if lost > 0 || doubled > 0 || len(n) != len(recorded) {
		t.Fatalf("of %d recorded events, %d lost, %d stored more than once; %d distinct stored", len(recorded), lost, doubled, len(n))
	}
}
