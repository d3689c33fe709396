package capturetest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
)

// Store is the part of agenttrail.Store that WaitEvents reads.
type Store interface {
	Query(ctx context.Context, q agenttrail.Query) (agenttrail.Page, error)
}

// storedTimeout is how long WaitEvents waits: events recorded while the
// server was down are sent after the Recorder's backoff, in batches.
const storedTimeout = 20 * time.Second

// WaitEvents polls store until it holds at least n events matching f and
// returns them in commit order (agenttrail.SortSeq). It fails the test
// unless exactly n match, listing what was stored.
func WaitEvents(t testing.TB, store Store, f agenttrail.Filter, n int) []agenttrail.Event {
	t.Helper()
	deadline := time.Now().Add(storedTimeout)
	for {
		page, err := store.Query(context.Background(), agenttrail.Query{Filter: f, Sort: agenttrail.SortSeq, Limit: n + 100})
		if err != nil {
			t.Fatalf("capturetest: query the store: %v", err)
		}
		if len(page.Events) >= n || time.Now().After(deadline) {
			if len(page.Events) != n {
				t.Fatalf("stored %d events matching %+v, want %d:\n%s", len(page.Events), f, n, Dump(page.Events))
			}
			return page.Events
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Dump lists events one a line, for failure messages.
func Dump(events []agenttrail.Event) string {
	var b strings.Builder
	for _, e := range events {
		fmt.Fprintf(&b, "  %s %s %s/%s %d %s by %s %s\n", e.Source, e.Action, e.ResourceType, e.ResourceID, e.StatusCode, e.Result, e.ActorID, e.Metadata)
	}
	return b.String()
}
