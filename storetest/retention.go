package storetest

import (
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
)

func testDeleteBefore(t *testing.T, s agenttrail.Store) {
	start := Base()
	h := start.Truncate(time.Hour)
	stored := AppendAll(t, s, Events(50, 2000, start, 3*24*time.Hour), 500)
	whole := agenttrail.Filter{Since: h.Add(-24 * time.Hour), Until: h.Add(4 * 24 * time.Hour)}
	check := func(step string) {
		t.Helper()
		checkSeqs(t, "Query(all) "+step, all(t, s, agenttrail.Filter{}), Select(stored, agenttrail.Query{Sort: agenttrail.SortSeq}))
		for _, by := range agenttrail.Dimensions {
			checkAggregate(t, s, stored, agenttrail.Filter{}, by)
		}
		checkAggregate(t, s, stored, agenttrail.Filter{Org: []string{"acme"}, Since: h.Add(20 * time.Hour)}, agenttrail.DimModel)
		checkSeriesCall(t, s, stored, whole, agenttrail.Hour, "")
		checkSeriesCall(t, s, stored, whole, agenttrail.Hour, agenttrail.DimSource)
		checkSeriesCall(t, s, stored, whole, agenttrail.Day, agenttrail.DimModel)
	}
	deleteBefore := func(cut time.Time) {
		t.Helper()
		var kept []agenttrail.Event
		want := int64(0)
		for _, e := range stored {
			if e.Time.Before(cut) {
				want++
			} else {
				kept = append(kept, e)
			}
		}
		n, err := s.DeleteBefore(t.Context(), cut)
		if err != nil || n != want {
			t.Fatalf("DeleteBefore(%v) = %d, %v, want %d", cut, n, err, want)
		}
		stored = kept
	}

	cut := start.Add(30*time.Hour + 17*time.Minute + 3*time.Second + 123456*time.Microsecond)
	deleteBefore(cut)
	check("after DeleteBefore(unaligned)")
	deleteBefore(cut) // nothing left to delete
	check("after DeleteBefore again")

	// Late events into deleted hours, the cut hour and later hours keep
	// rollups and raw counts in step.
	late := Events(51, 300, cut.Add(-3*time.Hour), 5*time.Hour)
	stored = append(stored, AppendAll(t, s, late, 300)...)
	check("after appending late events")
	deleteBefore(h.Add(40 * time.Hour))
	check("after DeleteBefore(aligned)")
	deleteBefore(h.Add(5 * 24 * time.Hour))
	check("after deleting everything")
	if len(stored) != 0 {
		t.Fatalf("model still holds %d events", len(stored))
	}
}
