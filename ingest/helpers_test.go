package ingest_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/ingest"
	"github.com/agenttrail/agenttrail/sqlite"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// countingStore wraps the real store: it counts Append calls and their
// sizes, can hold Appends until released, and can fail them.
type countingStore struct {
	agenttrail.Store

	mu      sync.Mutex
	sizes   []int
	hold    chan struct{} // when not nil, each Append waits until it is closed
	entered chan int      // when not nil, told the size of each Append as it starts
	failIf  func(batch []agenttrail.Event) error
}

func (c *countingStore) Append(ctx context.Context, batch []agenttrail.Event) (agenttrail.AppendResult, error) {
	c.mu.Lock()
	c.sizes = append(c.sizes, len(batch))
	hold, entered, failIf := c.hold, c.entered, c.failIf
	c.mu.Unlock()
	if entered != nil {
		entered <- len(batch)
	}
	if hold != nil {
		<-hold
	}
	if failIf != nil {
		if err := failIf(batch); err != nil {
			return agenttrail.AppendResult{}, err
		}
	}
	return c.Store.Append(ctx, batch)
}

func (c *countingStore) calls() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.sizes)
}

func openStore(t *testing.T) *countingStore {
	t.Helper()
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "trail.db"), sqlite.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return &countingStore{Store: s}
}

// runner runs a Pipeline for a test.
type runner struct {
	t      *testing.T
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

// start runs p until the test ends.
func start(t *testing.T, p *ingest.Pipeline) *runner {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &runner{t: t, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- p.Run(ctx) }()
	t.Cleanup(r.stop)
	return r
}

// stop cancels Run's context and waits for Run to return.
func (r *runner) stop() {
	r.once.Do(func() {
		r.cancel()
		if err := <-r.done; err != nil {
			r.t.Errorf("Run = %v, want nil", err)
		}
	})
}

var base = time.Date(2025, 3, 5, 7, 23, 11, 0, time.UTC)

// events returns n valid, normalized events with the given ids (generated
// ones when ids is empty).
func events(n int, ids ...string) []agenttrail.Event {
	out := make([]agenttrail.Event, n)
	for i := range out {
		e := agenttrail.Event{
			ActorType: agenttrail.ActorAgent,
			ActorID:   fmt.Sprintf("agent-%d", i%3),
			Source:    agenttrail.SourceShell,
			Action:    "shell_exec",
			Result:    agenttrail.ResultSuccess,
			Time:      base.Add(time.Duration(i) * time.Second),
		}
		if i < len(ids) {
			e.ID = ids[i]
		}
		e.Normalize(base, "")
		if err := e.Validate(base); err != nil {
			panic(err)
		}
		out[i] = e
	}
	return out
}

type submitResult struct {
	res agenttrail.AppendResult
	err error
}

// submitAsync submits evs in a goroutine and returns where its result will
// arrive.
func submitAsync(p *ingest.Pipeline, evs []agenttrail.Event) <-chan submitResult {
	ch := make(chan submitResult, 1)
	go func() {
		res, err := p.Write(context.Background(), evs, ingest.Scope{})
		ch <- submitResult{res.AppendResult, err}
	}()
	return ch
}

// waitDepth waits until p has n events queued.
func waitDepth(t *testing.T, p *ingest.Pipeline, n int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for p.Depth() != n {
		if time.Now().After(deadline) {
			t.Fatalf("Depth() = %d, want %d", p.Depth(), n)
		}
		time.Sleep(time.Millisecond)
	}
}
