package postgres_test

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/postgres"
	"github.com/agenttrail/agenttrail/storetest"
)

// TestSealDays moves the clock over midnight: a day's daily rollups are
// computed from its hours once it is over, late events update both tables,
// and reads combine sealed days, unsealed days and raw edges exactly.
func TestSealDays(t *testing.T) {
	s, dsn := openStore(t)
	ctx := context.Background()
	d0 := time.Date(2025, 6, 10, 0, 0, 0, 0, time.UTC)
	clock := d0.Add(12 * time.Hour)
	postgres.SetClock(s, func() time.Time { return clock })
	var stored []agenttrail.Event
	appendEvents := func(seed int64, n int, from time.Time, span time.Duration) {
		t.Helper()
		events := storetest.Events(seed, n, from, span)
		stored = append(stored, storetest.AppendAll(t, s, events, 250)...)
	}
	check := func(step string, sealedUntil time.Time) {
		t.Helper()
		if got := queryStrings(t, dsn, "SELECT sealed_until::text FROM store_state")[0]; got != sealedUntil.Format("2006-01-02 15:04:05+00") {
			t.Errorf("%s: sealed_until = %s, want %v", step, got, sealedUntil)
		}
		checkRollups(t, dsn)
		for _, f := range []agenttrail.Filter{
			{},
			{Since: d0.Add(-36 * time.Hour), Until: d0.Add(40 * time.Hour)},
			{Since: d0.Add(-47*time.Hour - 3*time.Minute), Until: d0.Add(23*time.Hour + 59*time.Minute)},
			{Org: []string{"acme"}, Since: d0.Add(-24 * time.Hour)},
			{Source: []string{agenttrail.SourceLLM}, Until: d0.Add(30*time.Hour + 30*time.Minute)},
		} {
			for _, by := range []agenttrail.Dimension{agenttrail.DimSource, agenttrail.DimProject, agenttrail.DimModel} {
				got, err := s.Aggregate(ctx, f, by)
				if err != nil {
					t.Fatalf("%s: Aggregate(%v, %s) error: %v", step, f.Values(), by, err)
				}
				if d := diffBuckets(got, storetest.Aggregate(stored, f, by)); d != "" {
					t.Errorf("%s: Aggregate(%v, %s): %s", step, f.Values(), by, d)
				}
			}
			if f.Since.IsZero() || f.Until.IsZero() {
				continue
			}
			for _, iv := range []agenttrail.Interval{agenttrail.Day, agenttrail.Week} {
				got, err := s.Series(ctx, f, iv, agenttrail.DimResult)
				if err != nil {
					t.Fatalf("%s: Series(%v, %s) error: %v", step, f.Values(), iv, err)
				}
				want := storetest.Series(stored, f, iv, agenttrail.DimResult)
				if len(got) != len(want) {
					t.Fatalf("%s: Series(%v, %s) = %d buckets, want %d", step, f.Values(), iv, len(got), len(want))
				}
				for i := range got {
					if got[i].Count != want[i].Count || !got[i].Start.Equal(want[i].Start) || fmt.Sprint(got[i].By) != fmt.Sprint(want[i].By) {
						t.Errorf("%s: Series(%v, %s) bucket %d = %+v, want %+v", step, f.Values(), iv, i, got[i], want[i])
					}
				}
			}
		}
	}

	// The first Append seals every day before today: the two days before
	// d0 take the late path, d0 itself has hourly rows only.
	appendEvents(1, 1500, d0.Add(-48*time.Hour), 60*time.Hour)
	check("day 0", d0)

	clock = d0.Add(25 * time.Hour) // an hour into day 1: day 0 is sealed
	appendEvents(2, 500, d0.Add(24*time.Hour), time.Hour)
	check("day 1", d0.AddDate(0, 0, 1))

	appendEvents(3, 300, d0.Add(-2*time.Hour), 4*time.Hour) // late, into sealed days
	check("late events", d0.AddDate(0, 0, 1))

	for _, cut := range []time.Time{d0.Add(5*time.Hour + 30*time.Minute), d0.Add(24*time.Hour + 20*time.Minute)} {
		n, err := s.DeleteBefore(ctx, cut)
		var kept []agenttrail.Event
		for _, e := range stored {
			if !e.Time.Before(cut) {
				kept = append(kept, e)
			}
		}
		if err != nil || n != int64(len(stored)-len(kept)) {
			t.Fatalf("DeleteBefore(%v) = %d, %v, want %d", cut, n, err, len(stored)-len(kept))
		}
		stored = kept
		check(fmt.Sprintf("after DeleteBefore(%v)", cut), d0.AddDate(0, 0, 1))
	}
}

// diffBuckets describes how got differs from want, or returns "".
func diffBuckets(got, want []agenttrail.Bucket) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d buckets %v, want %d %v", len(got), got, len(want), want)
	}
	for i := range got {
		g, w := got[i], want[i]
		cost := math.Abs(g.CostUSD-w.CostUSD) <= 1e-6
		g.CostUSD, w.CostUSD = 0, 0
		if g != w || !cost {
			return fmt.Sprintf("bucket %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	return ""
}
