package capturetest

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/agenttrail/agenttrail"
)

// pageStore answers every query with the same events and remembers the
// last query.
type pageStore struct {
	events []agenttrail.Event
	last   agenttrail.Query
}

func (s *pageStore) Query(_ context.Context, q agenttrail.Query) (agenttrail.Page, error) {
	s.last = q
	return agenttrail.Page{Events: s.events}, nil
}

// fatalTB records a fatal failure instead of failing the real test.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// fatal runs fn with a fatalTB on its own goroutine and returns the fatal
// message, "" when fn returned normally.
func fatal(t *testing.T, fn func(tb testing.TB)) string {
	tb := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(tb)
	}()
	<-done
	return tb.msg
}

func events(actions ...string) []agenttrail.Event {
	var ev []agenttrail.Event
	for _, a := range actions {
		ev = append(ev, agenttrail.Event{Source: agenttrail.SourceShell, Action: a})
	}
	return ev
}

func TestWaitEvents(t *testing.T) {
	st := &pageStore{events: events("run", "run")}
	f := agenttrail.Filter{Source: []string{agenttrail.SourceShell}}
	if got := WaitEvents(t, st, f, 2); len(got) != 2 {
		t.Errorf("WaitEvents(2) = %d events, want 2", len(got))
	}
	if st.last.Sort != agenttrail.SortSeq || st.last.Limit <= 2 || len(st.last.Filter.Source) != 1 {
		t.Errorf("query = %+v, want the filter, commit order and room for more than 2", st.last)
	}

	// More events than wanted fail at once.
	st.events = events("run", "run", "unexpected")
	msg := fatal(t, func(tb testing.TB) { WaitEvents(tb, st, f, 2) })
	if !strings.Contains(msg, "stored 3 events") || !strings.Contains(msg, "unexpected") {
		t.Errorf("WaitEvents with one event too many failed with %q, want the count and the events listed", msg)
	}
}

func TestEventsWait(t *testing.T) {
	var m Events
	m.Record(context.Background(), agenttrail.Event{Action: "a"})
	go m.Record(context.Background(), agenttrail.Event{Action: "b"})
	if got := m.Wait(t, 2); len(got) != 2 || m.Len() != 2 {
		t.Errorf("Wait(2) = %d events, Len %d; want 2", len(got), m.Len())
	}
	all := m.All()
	all[0].Action = "changed"
	if m.All()[0].Action != "a" {
		t.Error("All returned the recorder's own slice")
	}
}
