package server

import (
	"fmt"
	"math"
	"net/url"
	"sort"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/wire"
)

// sums adds one event to a bucket the way the API documents it: count, and
// the LLM usage of LLM calls.
func sums(b *agenttrail.Bucket, ev *agenttrail.Event) {
	b.Count++
	if l, ok := ev.LLM(); ok {
		b.InputTokens += l.InputTokens
		b.OutputTokens += l.OutputTokens
		b.CacheReadTokens += l.CacheReadTokens
		b.CacheWriteTokens += l.CacheWriteTokens
		b.ReasoningTokens += l.ReasoningTokens
		b.CostUSD += l.Cost()
	}
}

func sameFloat(a, b float64) bool { return math.Abs(a-b) <= 1e-6*math.Max(1, math.Abs(b)) }

func TestAggregateMatchesEvents(t *testing.T) { forEachStore(t, testAggregateMatchesEvents) }

func testAggregateMatchesEvents(t *testing.T, o options) {
	o.now = testNow
	e := newEnv(t, o)
	events := dataset(t, e, 7, 1500)
	cut := testNow.Add(-40 * time.Hour).Truncate(time.Minute)
	filters := []struct {
		query string
		match func(ev *agenttrail.Event) bool
	}{
		{"", func(*agenttrail.Event) bool { return true }},
		{"source=llm-proxy&source=shell&since=" + cut.Format(time.RFC3339), func(ev *agenttrail.Event) bool {
			return (ev.Source == "llm-proxy" || ev.Source == "shell") && !ev.Time.Before(cut)
		}},
		{"org=acme&result=success", func(ev *agenttrail.Event) bool { return ev.Org == "acme" && ev.Result == "success" }},
	}
	for _, by := range agenttrail.Dimensions {
		for _, f := range filters {
			m := map[string]*agenttrail.Bucket{}
			for i := range events {
				ev := &events[i]
				if !f.match(ev) {
					continue
				}
				k := dimension(ev, by)
				if m[k] == nil {
					m[k] = &agenttrail.Bucket{Key: k}
				}
				sums(m[k], ev)
			}
			var want []agenttrail.Bucket
			for _, b := range m {
				want = append(want, *b)
			}
			sort.Slice(want, func(i, j int) bool {
				if want[i].Count != want[j].Count {
					return want[i].Count > want[j].Count
				}
				return want[i].Key < want[j].Key
			})

			path := "/v1/aggregate?by=" + string(by)
			if f.query != "" {
				path += "&" + f.query
			}
			var got wire.Aggregate
			e.getJSON(t, path, &got)
			if got.By != by {
				t.Errorf("GET %s: by = %q, want %q", path, got.By, by)
			}
			if len(got.Buckets) != len(want) {
				t.Errorf("GET %s = %d buckets, want %d: %+v", path, len(got.Buckets), len(want), got.Buckets)
				continue
			}
			for i := range want {
				g, w := got.Buckets[i], want[i]
				if g.Key != w.Key || g.Count != w.Count || g.InputTokens != w.InputTokens || g.OutputTokens != w.OutputTokens ||
					g.CacheReadTokens != w.CacheReadTokens || g.CacheWriteTokens != w.CacheWriteTokens ||
					g.ReasoningTokens != w.ReasoningTokens || !sameFloat(g.CostUSD, w.CostUSD) {
					t.Errorf("GET %s bucket %d = %+v, want %+v", path, i, g, w)
				}
			}
		}
	}
}

// dimension is the value of by for ev, written out here rather than taken
// from the domain so the test checks the API against its documented
// meaning (docs/architecture.md, the wire contract).
func dimension(ev *agenttrail.Event, by agenttrail.Dimension) string {
	switch by {
	case agenttrail.DimSource:
		return ev.Source
	case agenttrail.DimActorType:
		return string(ev.ActorType)
	case agenttrail.DimActorID:
		return ev.ActorID
	case agenttrail.DimResult:
		return string(ev.Result)
	case agenttrail.DimAction:
		return ev.Action
	case agenttrail.DimResourceType:
		return ev.ResourceType
	case agenttrail.DimOrg:
		return ev.Org
	case agenttrail.DimProject:
		return ev.Project
	case agenttrail.DimModel:
		l, _ := ev.LLM()
		return l.Model
	case agenttrail.DimTraceID:
		return ev.TraceID
	case agenttrail.DimSessionID:
		return ev.SessionID
	}
	panic("unknown dimension " + by)
}

func TestTimeseriesMatchesEvents(t *testing.T) { forEachStore(t, testTimeseriesMatchesEvents) }

func testTimeseriesMatchesEvents(t *testing.T, o options) {
	o.now = testNow
	e := newEnv(t, o)
	events := dataset(t, e, 8, 1200)
	since := testNow.Add(-80 * time.Hour).Add(17 * time.Minute) // 2025-03-09T04:17Z
	until := testNow.Add(-3 * time.Hour)
	for _, tc := range []struct {
		interval string
		step     func(time.Time) time.Time
		first    time.Time // the start of the bucket holding since
		by       agenttrail.Dimension
		query    string
		match    func(*agenttrail.Event) bool
	}{
		{"hour", func(t time.Time) time.Time { return t.Add(time.Hour) }, since.Truncate(time.Hour), "", "", nil},
		{"hour", func(t time.Time) time.Time { return t.Add(time.Hour) }, since.Truncate(time.Hour), "source", "result=failure", func(ev *agenttrail.Event) bool { return ev.Result == "failure" }},
		{"day", func(t time.Time) time.Time { return t.AddDate(0, 0, 1) }, time.Date(2025, 3, 9, 0, 0, 0, 0, time.UTC), "actor_type", "", nil},
		// since falls on Sunday 2025-03-09: its ISO week began on Monday the 3rd.
		{"week", func(t time.Time) time.Time { return t.AddDate(0, 0, 7) }, time.Date(2025, 3, 3, 0, 0, 0, 0, time.UTC), "org", "", nil},
	} {
		type bucket struct {
			count int64
			by    map[string]int64
		}
		var starts []time.Time
		want := map[time.Time]*bucket{}
		for s := tc.first; s.Before(until); s = tc.step(s) {
			starts = append(starts, s)
			want[s] = &bucket{by: map[string]int64{}}
		}
		for i := range events {
			ev := &events[i]
			if ev.Time.Before(since) || !ev.Time.Before(until) || tc.match != nil && !tc.match(ev) {
				continue
			}
			s := starts[sort.Search(len(starts), func(i int) bool { return starts[i].After(ev.Time) })-1]
			want[s].count++
			if tc.by != "" {
				want[s].by[dimension(ev, tc.by)]++
			}
		}

		q := url.Values{"interval": {tc.interval}, "since": {since.Format(time.RFC3339)}, "until": {until.Format(time.RFC3339)}}
		if tc.by != "" {
			q.Set("by", string(tc.by))
		}
		path := "/v1/timeseries?" + q.Encode()
		if tc.query != "" {
			path += "&" + tc.query
		}
		var got wire.Timeseries
		e.getJSON(t, path, &got)
		if string(got.Interval) != tc.interval || got.By != tc.by {
			t.Errorf("GET %s: interval %q by %q, want %q %q", path, got.Interval, got.By, tc.interval, tc.by)
		}
		if len(got.Buckets) != len(starts) {
			t.Errorf("GET %s = %d buckets, want %d (empty ones included)", path, len(got.Buckets), len(starts))
			continue
		}
		var total int64
		for i, b := range got.Buckets {
			w := want[starts[i]]
			total += w.count
			if !b.Start.Equal(starts[i]) || b.Count != w.count {
				t.Errorf("GET %s bucket %d = start %v count %d, want %v %d", path, i, b.Start, b.Count, starts[i], w.count)
			}
			if tc.by != "" && fmt.Sprint(b.By) != fmt.Sprint(w.by) && !(len(b.By) == 0 && len(w.by) == 0) {
				t.Errorf("GET %s bucket %d by = %v, want %v", path, i, b.By, w.by)
			}
		}
		if total == 0 {
			t.Errorf("GET %s: the test data has no match; the case checks nothing", path)
		}
	}
}
