package sqlite

import (
	"fmt"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/storetest"
)

// TestCompact checks that hourly rollups folded into day rows, and day rows
// kept in step afterwards by late events and retention, answer exactly.
func TestCompact(t *testing.T) {
	s, err := open(t.Context(), filepath.Join(t.TempDir(), "trail.db"), nil, "NORMAL")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	day := time.Date(2025, 3, 10, 0, 0, 0, 0, time.UTC) // a Monday
	clock := day.Add(10 * time.Hour)
	s.now = func() time.Time { return clock }

	var stored []agenttrail.Event
	add := func(seed int64, n int, from time.Time, span time.Duration) {
		t.Helper()
		stored = append(stored, storetest.AppendAll(t, s, storetest.Events(seed, n, from, span), 500)...)
	}
	check := func(step string) {
		t.Helper()
		whole := agenttrail.Filter{Since: day.Add(-4 * 24 * time.Hour), Until: day.Add(4 * 24 * time.Hour)}
		unaligned := agenttrail.Filter{Since: day.Add(-50*time.Hour - 7*time.Minute), Until: day.Add(53*time.Hour + time.Second)}
		for _, f := range []agenttrail.Filter{{}, whole, unaligned, {Org: []string{"acme"}, Since: day.Add(-24 * time.Hour)}} {
			for _, by := range agenttrail.Dimensions {
				got, err := s.Aggregate(t.Context(), f, by)
				if err != nil {
					t.Fatal(err)
				}
				want := storetest.Aggregate(stored, f, by)
				if fmt.Sprint(round(got)) != fmt.Sprint(round(want)) {
					t.Errorf("%s: Aggregate(%v, by %s) = %v, want %v", step, f, by, got, want)
				}
			}
		}
		for _, f := range []agenttrail.Filter{whole, unaligned} {
			for _, iv := range []agenttrail.Interval{agenttrail.Hour, agenttrail.Day, agenttrail.Week} {
				got, err := s.Series(t.Context(), f, iv, agenttrail.DimSource)
				if err != nil {
					t.Fatal(err)
				}
				want := storetest.Series(stored, f, iv, agenttrail.DimSource)
				for i := range want {
					want[i].CostUSD = math.Round(want[i].CostUSD * 1e6)
					got[i].CostUSD = math.Round(got[i].CostUSD * 1e6)
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("%s: Series(%v, %s) = %v,\nwant %v", step, f, iv, got, want)
				}
			}
		}
	}
	foldedDays := func() int {
		var n int
		if err := s.r.QueryRow("SELECT count(DISTINCT day) FROM rollup_days WHERE dim = ?", dimTotal).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	// Today is day: the three days before it are over; today and tomorrow
	// (clocks disagree) are not.
	add(1, 2500, day.Add(-3*24*time.Hour), 5*24*time.Hour)
	if s.daysUntil != day.UnixNano() {
		t.Fatalf("daysUntil = %v, want %v", time.Unix(0, s.daysUntil).UTC(), day)
	}
	check("before folding")

	// Two days later the next batch first folds those two days.
	clock = day.Add(2*24*time.Hour + 5*time.Hour)
	add(2, 400, day.Add(10*time.Hour), 43*time.Hour)
	if want := day.Add(2 * 24 * time.Hour).UnixNano(); s.daysUntil != want {
		t.Fatalf("daysUntil = %v, want %v", time.Unix(0, s.daysUntil).UTC(), time.Unix(0, want).UTC())
	}
	if n := foldedDays(); n != 5 {
		t.Errorf("rollup_days holds %d days, want 5 (3 kept in step since the first batch, 2 folded)", n)
	}
	check("after folding")

	// Late events into folded days, then retention.
	add(3, 300, day.Add(-2*24*time.Hour), 3*24*time.Hour)
	check("after late events")
	cut := day.Add(-20*time.Hour - 13*time.Minute)
	var kept []agenttrail.Event
	for _, e := range stored {
		if !e.Time.Before(cut) {
			kept = append(kept, e)
		}
	}
	n, err := s.DeleteBefore(t.Context(), cut)
	if err != nil || n != int64(len(stored)-len(kept)) {
		t.Fatalf("DeleteBefore = %d, %v, want %d", n, err, len(stored)-len(kept))
	}
	stored = kept
	check("after DeleteBefore")

	// Reopening keeps the folding state.
	path := s.path
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = open(t.Context(), path, nil, "NORMAL")
	if err != nil {
		t.Fatal(err)
	}
	s.now = func() time.Time { return clock }
	var until int64
	if err := s.r.QueryRow("SELECT value FROM meta WHERE name = 'days_until'").Scan(&until); err != nil {
		t.Fatal(err)
	}
	if want := day.Add(2 * 24 * time.Hour).UnixNano(); until != want {
		t.Errorf("days_until after reopening = %v, want %v", time.Unix(0, until).UTC(), time.Unix(0, want).UTC())
	}
	check("after reopening")
}

// round makes buckets comparable as text: costs to the micro-dollar.
func round(b []agenttrail.Bucket) []agenttrail.Bucket {
	out := append([]agenttrail.Bucket(nil), b...)
	for i := range out {
		out[i].CostUSD = math.Round(out[i].CostUSD * 1e6)
	}
	return out
}
