package capturetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
)

// waitTimeout is how long Events.Wait waits: a proxy records after the
// response has gone out, so a client may return a moment before.
const waitTimeout = 10 * time.Second

// Events is a capture.Recorder that keeps every event in memory, for unit
// tests to inspect; acceptance tests record through the SDK's Recorder
// (see Recorder). The zero value is ready; it is safe for concurrent use.
type Events struct {
	mu     sync.Mutex
	events []agenttrail.Event
}

// Record keeps e.
func (m *Events) Record(_ context.Context, e agenttrail.Event) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events = append(m.events, e)
}

// All returns a copy of the events recorded so far, in order.
func (m *Events) All() []agenttrail.Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]agenttrail.Event(nil), m.events...)
}

// Len returns how many events were recorded so far.
func (m *Events) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.events)
}

// Wait returns all the events recorded once there are at least n, failing
// the test when they do not come in time.
func (m *Events) Wait(t testing.TB, n int) []agenttrail.Event {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		ev := m.All()
		if len(ev) >= n {
			return ev
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %d events, want %d:\n%s", len(ev), n, Dump(ev))
		}
		time.Sleep(5 * time.Millisecond)
	}
}
