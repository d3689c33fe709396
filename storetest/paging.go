package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
)

func testPaging(t *testing.T, s agenttrail.Store) {
	events := Events(20, 1000, Base(), 10*time.Hour)
	// A run of 30 events at one instant: ties that span a page boundary.
	for i := 190; i < 220; i++ {
		events[i].Time = events[190].Time
	}
	// One task, read as an investigator does: the run of ties among its
	// events spans pages of 7.
	task := traced(events[190:220])
	stored := AppendAll(t, s, events, 250)
	for _, c := range []struct {
		f     agenttrail.Filter
		limit int
	}{
		{agenttrail.Filter{}, 200}, {agenttrail.Filter{Org: []string{"acme"}}, 200},
		{agenttrail.Filter{Source: []string{agenttrail.SourceLLM, agenttrail.SourceMCP}}, 200},
		{agenttrail.Filter{TraceID: []string{task.TraceID}}, 7},
		{agenttrail.Filter{SessionID: []string{task.SessionID}, Org: []string{task.Org}}, 7},
	} {
		f := c.f
		for _, sort := range sorts() {
			q := agenttrail.Query{Filter: f, Sort: sort, Limit: c.limit}
			want := Select(stored, q)
			var got []agenttrail.Event
			pages := 0
			for {
				p, err := s.Query(t.Context(), q)
				if err != nil {
					t.Fatalf("Query(%s, sort %s, page %d) error: %v", filterString(f), sort, pages, err)
				}
				call := fmt.Sprintf("Query(%s, sort %s, page %d)", filterString(f), sort, pages)
				rest := Select(stored, q)
				checkSeqs(t, call, p.Events, rest[:min(q.Limit, len(rest))])
				checkNext(t, call, q, p, len(got)+len(p.Events) < len(want))
				got = append(got, p.Events...)
				pages++
				if p.Next == nil || len(p.Events) == 0 || pages > 100 {
					break
				}
				q.After = p.Next
			}
			checkSeqs(t, fmt.Sprintf("Query(%s, sort %s, all %d pages)", filterString(f), sort, pages), got, want)
		}
	}
}

func testPagingWhileAppending(t *testing.T, s agenttrail.Store) {
	stored := AppendAll(t, s, Events(21, 1000, Base(), 10*time.Hour), 500)
	late := Events(22, 1200, Base().Add(-time.Hour), 12*time.Hour)
	for _, sort := range sorts() {
		t.Run(string(sort), func(t *testing.T) {
			initial := append([]agenttrail.Event(nil), stored...)
			q := agenttrail.Query{Sort: sort, Limit: 200}
			seen := map[int64]int{}
			var got []agenttrail.Event
			for page := 0; ; page++ {
				if page > 50 {
					t.Fatalf("Query(sort %s) did not end after %d pages", sort, page)
				}
				p, err := s.Query(t.Context(), q)
				if err != nil {
					t.Fatalf("Query(sort %s, page %d) error: %v", sort, page, err)
				}
				got = append(got, p.Events...)
				if p.Next == nil || len(p.Events) == 0 {
					break
				}
				q.After = p.Next
				// New events between pages: some older than the position
				// reached, some newer.
				if len(late) >= 50 && page < 8 {
					stored = append(stored, AppendAll(t, s, late[:50], 50)...)
					late = late[50:]
				}
			}
			for i := range got {
				seen[got[i].Seq]++
				if i > 0 && !After(sort, agenttrail.PositionOf(&got[i-1]), agenttrail.PositionOf(&got[i])) {
					t.Fatalf("Query(sort %s) event %d (seq %d) is out of order after seq %d", sort, i, got[i].Seq, got[i-1].Seq)
				}
			}
			for seq, n := range seen {
				if n > 1 {
					t.Errorf("Query(sort %s) returned seq %d %d times, want once", sort, seq, n)
				}
			}
			for i := range initial {
				if seen[initial[i].Seq] != 1 {
					t.Errorf("Query(sort %s) returned event seq %d %d times, want once", sort, initial[i].Seq, seen[initial[i].Seq])
				}
			}
			if sort == agenttrail.SortSeq {
				// Commit order misses nothing that was committed before the
				// last page was read.
				checkSeqs(t, "Query(sort seq, while appending)", got, Select(stored, agenttrail.Query{Sort: sort}))
			}
		})
	}
}

func testSeqLateEvent(t *testing.T, s agenttrail.Store) {
	q := agenttrail.Query{Sort: agenttrail.SortSeq, Limit: 100}
	p, err := s.Query(t.Context(), q)
	if err != nil {
		t.Fatalf("Query(empty store, seq) error: %v", err)
	}
	if len(p.Events) != 0 || p.Next == nil {
		t.Fatalf("Query(empty store, seq) = %d events, Next %v; want 0 events and a Next to poll from", len(p.Events), p.Next)
	}
	stored := AppendAll(t, s, Events(23, 150, Base(), time.Hour), 150)
	q.After = p.Next
	got := collectSeq(t, s, &q)
	checkSeqs(t, "Query(seq, first poll)", got, stored)

	// An event that arrives late with an old time.
	old := Events(24, 1, Base().Add(-30*24*time.Hour), time.Hour)
	old = AppendAll(t, s, old, 1)
	got = collectSeq(t, s, &q)
	checkSeqs(t, "Query(seq, poll after a late event)", got, old)

	// Nothing new: an empty page that still says where to continue.
	got = collectSeq(t, s, &q)
	if len(got) != 0 {
		t.Errorf("Query(seq, nothing new) = %d events, want 0", len(got))
	}
}

// collectSeq polls q in seq order until an empty page and leaves q.After
// where the poller would continue.
func collectSeq(t *testing.T, s agenttrail.Store, q *agenttrail.Query) []agenttrail.Event {
	t.Helper()
	var out []agenttrail.Event
	for range 1000 {
		p, err := s.Query(t.Context(), *q)
		if err != nil {
			t.Fatalf("Query(seq) error: %v", err)
		}
		checkNext(t, "Query(seq)", *q, p, false)
		if p.Next == nil {
			t.Fatalf("Query(seq) Next = nil, want always set")
		}
		q.After = p.Next
		out = append(out, p.Events...)
		if len(p.Events) == 0 {
			return out
		}
	}
	t.Fatalf("Query(seq) did not end")
	return nil
}
