package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
)

// dimFilter returns a filter on by itself with the given values, and false
// for a dimension that has no filter field (model).
func dimFilter(by agenttrail.Dimension, vals ...string) (agenttrail.Filter, bool) {
	var f agenttrail.Filter
	p := f.DimensionValues(by)
	if p == nil {
		return f, false
	}
	*p = vals
	return f, true
}

// aggregateFilters are filters a rollup can serve (org, project, time,
// hour-aligned or not) and filters it cannot (q, resource_id, status_code,
// producer_id, trace_id, session_id, another dimension), over data
// starting at start.
func aggregateFilters(stored []agenttrail.Event, start time.Time) []agenttrail.Filter {
	h := start.Truncate(time.Hour)
	e := stored[3]
	return []agenttrail.Filter{
		{},
		{Org: []string{"acme"}},
		{Org: []string{"acme"}, Project: []string{"web", ""}},
		{Since: h.Add(5 * time.Hour), Until: h.Add(29 * time.Hour)},
		{Org: []string{"globex"}, Since: h.Add(5*time.Hour + 17*time.Minute + 3*time.Second + 5), Until: h.Add(40*time.Hour + 59*time.Minute)},
		{Since: e.Time, Until: stored[9].Time.Add(time.Hour)},
		{Since: h.Add(30*time.Hour + time.Minute), Until: h.Add(30*time.Hour + 50*time.Minute)},
		{Since: h.Add(30*time.Hour + time.Minute)},
		{Until: h.Add(30*time.Hour + time.Minute)},
		{Q: "github"},
		{ResourceID: []string{e.ResourceID, "claude-sonnet-4"}},
		{StatusCode: []int{403, 429, 502}},
		{ProducerID: []string{e.ProducerID}},
		{ActorID: []string{"agent-01", "agent-04"}, Since: h.Add(3*time.Hour + 30*time.Minute)},
		{Source: []string{agenttrail.SourceLLM}, Result: []string{"success"}},
		{Result: []string{"denied", "failure"}},
		{NotSource: []string{agenttrail.SourceLLM, agenttrail.SourceAudit}},
		{Org: []string{"acme"}, NotAction: []string{"tools/call"}, Since: h.Add(5 * time.Hour)},
		{TraceID: []string{traced(stored).TraceID}},
		{SessionID: []string{traced(stored).SessionID, "no such task"}, Source: []string{agenttrail.SourceLLM}},
		{SessionID: []string{""}, Since: h.Add(5 * time.Hour)},
	}
}

func testAggregate(t *testing.T, s agenttrail.Store) {
	start := Base()
	stored := AppendAll(t, s, Events(30, 3000, start, 7*24*time.Hour), 1000)
	for _, by := range agenttrail.Dimensions {
		filters := aggregateFilters(stored, start)
		if f, ok := dimFilter(by, stored[5].DimensionValue(by), stored[6].DimensionValue(by)); ok {
			filters = append(filters, f)
			f.Org, f.Since = []string{"acme"}, start.Add(90*time.Minute)
			filters = append(filters, f)
		}
		for _, f := range filters {
			checkAggregate(t, s, stored, f, by)
		}
	}
}

func checkAggregate(t *testing.T, s agenttrail.Store, stored []agenttrail.Event, f agenttrail.Filter, by agenttrail.Dimension) {
	t.Helper()
	call := fmt.Sprintf("Aggregate(%s, by %s)", filterString(f), by)
	got, err := s.Aggregate(t.Context(), f, by)
	if err != nil {
		t.Fatalf("%s error: %v", call, err)
	}
	checkBuckets(t, call, got, Aggregate(stored, f, by))
}

func checkSeriesCall(t *testing.T, s agenttrail.Store, stored []agenttrail.Event, f agenttrail.Filter, iv agenttrail.Interval, by agenttrail.Dimension) []agenttrail.TimeBucket {
	t.Helper()
	call := fmt.Sprintf("Series(%s, %s, by %q)", filterString(f), iv, by)
	got, err := s.Series(t.Context(), f, iv, by)
	if err != nil {
		t.Fatalf("%s error: %v", call, err)
	}
	checkSeries(t, call, got, Series(stored, f, iv, by))
	return got
}

// testAggregateEdges puts events exactly on hour boundaries and on the
// edges of unaligned ranges, and appends late events into old hours.
func testAggregateEdges(t *testing.T, s agenttrail.Store) {
	h := Base().Truncate(time.Hour)
	events := Events(31, 800, h, 6*time.Hour)
	for i := 0; i < 60; i++ {
		events[i].Time = h.Add(time.Duration(i%7) * time.Hour) // on the hour
	}
	stored := AppendAll(t, s, events, 400)
	late := AppendAll(t, s, Events(32, 100, h.Add(-2*time.Hour), 9*time.Hour), 100)
	stored = append(stored, late...)
	edge := stored[100].Time
	filters := []agenttrail.Filter{
		{Since: h.Add(time.Hour), Until: h.Add(3 * time.Hour)},
		{Since: h.Add(time.Hour - time.Microsecond), Until: h.Add(3*time.Hour + time.Microsecond)},
		{Since: h.Add(time.Hour + time.Microsecond), Until: h.Add(3*time.Hour - time.Microsecond)},
		{Since: edge, Until: edge.Add(time.Microsecond)},
		{Since: edge, Until: h.Add(5 * time.Hour)},
		{Since: h.Add(-3 * time.Hour), Until: edge},
		{Since: h.Add(2*time.Hour + 10*time.Minute), Until: h.Add(2*time.Hour + 20*time.Minute)},
		{Since: h.Add(time.Hour + time.Nanosecond), Until: h.Add(2*time.Hour - time.Nanosecond)},
	}
	for _, f := range filters {
		if f.Until.Before(f.Since) {
			f.Since, f.Until = f.Until, f.Since
		}
		if f.Until.Equal(f.Since) {
			f.Until = f.Until.Add(time.Microsecond)
		}
		for _, by := range []agenttrail.Dimension{agenttrail.DimSource, agenttrail.DimModel, agenttrail.DimProject} {
			checkAggregate(t, s, stored, f, by)
		}
		for _, iv := range []agenttrail.Interval{agenttrail.Hour, agenttrail.Day} {
			checkSeriesCall(t, s, stored, f, iv, "")
			checkSeriesCall(t, s, stored, f, iv, agenttrail.DimResult)
		}
	}
}

func testSeries(t *testing.T, s agenttrail.Store) {
	start := Base()
	stored := AppendAll(t, s, Events(33, 2000, start, 3*24*time.Hour), 1000)
	h := start.Truncate(time.Hour)
	filters := []agenttrail.Filter{
		{Since: h, Until: h.Add(72 * time.Hour)},
		{Org: []string{"acme"}, Since: start.Add(-5 * time.Hour), Until: start.Add(80 * time.Hour)},
		{Org: []string{"acme"}, Project: []string{"data"}, Since: start.Add(7 * time.Minute), Until: start.Add(50*time.Hour + 13*time.Second)},
		{Source: []string{agenttrail.SourceLLM, agenttrail.SourceShell}, Since: h.Add(time.Hour), Until: h.Add(70 * time.Hour)},
		{Q: "call", Since: h, Until: h.Add(72 * time.Hour)},
		{StatusCode: []int{200}, ResourceID: []string{stored[0].ResourceID, "gpt-4o"}, Since: start, Until: start.Add(3 * 24 * time.Hour)},
		{ProducerID: []string{stored[1].ProducerID}, Since: h, Until: h.Add(72 * time.Hour)},
	}
	for _, f := range filters {
		for _, iv := range []agenttrail.Interval{agenttrail.Hour, agenttrail.Day, agenttrail.Week} {
			checkSeriesCall(t, s, stored, f, iv, "")
			for _, by := range agenttrail.Dimensions {
				checkSeriesCall(t, s, stored, f, iv, by)
			}
		}
	}
}

func testSeriesWeeks(t *testing.T, s agenttrail.Store) {
	start := Base() // a Wednesday
	stored := AppendAll(t, s, Events(34, 1500, start, 5*7*24*time.Hour), 500)
	f := agenttrail.Filter{Since: start, Until: start.Add(5 * 7 * 24 * time.Hour)}
	got := checkSeriesCall(t, s, stored, f, agenttrail.Week, agenttrail.DimSource)
	if len(got) != 6 {
		t.Fatalf("Series(5 weeks from a Wednesday, week) = %d buckets, want 6", len(got))
	}
	for _, b := range got {
		if b.Start.Weekday() != time.Monday || b.Start.Hour() != 0 || b.Start.Minute() != 0 {
			t.Errorf("Series(week) bucket starts %v, want a Monday 00:00 UTC", b.Start)
		}
	}
	days := checkSeriesCall(t, s, stored, f, agenttrail.Day, "")
	if len(days) != 36 {
		t.Errorf("Series(5 weeks, day) = %d buckets, want 36", len(days))
	}
	// A range with no events at all still has its (empty) buckets.
	empty := agenttrail.Filter{Since: start.Add(-30 * 24 * time.Hour), Until: start.Add(-29 * 24 * time.Hour)}
	if b := checkSeriesCall(t, s, stored, empty, agenttrail.Hour, agenttrail.DimActorID); len(b) != 25 {
		t.Errorf("Series(empty day, hour) = %d buckets, want 25", len(b))
	}
}
