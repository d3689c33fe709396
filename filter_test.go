package agenttrail_test

import (
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
)

func TestFilterMatch(t *testing.T) {
	e := validEvent() // agent-7, llm-proxy, chat.completions, success, 200, acme, at testNow-1m
	at := e.Time
	for _, c := range []struct {
		name string
		f    agenttrail.Filter
		want bool
	}{
		{"empty", agenttrail.Filter{}, true},
		{"actor_id", agenttrail.Filter{ActorID: []string{"agent-7"}}, true},
		{"actor_id other", agenttrail.Filter{ActorID: []string{"agent-8"}}, false},
		{"OR within a field", agenttrail.Filter{ActorID: []string{"agent-8", "agent-7"}}, true},
		{"AND across fields", agenttrail.Filter{ActorID: []string{"agent-7"}, Source: []string{"shell"}}, false},
		{"every field", agenttrail.Filter{ActorID: []string{"agent-7"}, ActorType: []string{"agent"},
			Source: []string{"llm-proxy"}, Action: []string{"chat.completions"}, ResourceType: []string{"model"},
			ResourceID: []string{"claude sonnet"}, Result: []string{"success"}, Org: []string{"acme"},
			Project: []string{"release.v2_x-1"}, StatusCode: []int{200}, ProducerID: []string{"producer-1"},
			Since: at, Until: at.Add(time.Nanosecond), Q: "SONNET"}, true},
		{"actor_type", agenttrail.Filter{ActorType: []string{"user"}}, false},
		{"action", agenttrail.Filter{Action: []string{"chat"}}, false},
		{"resource_type", agenttrail.Filter{ResourceType: []string{"pod"}}, false},
		{"resource_id", agenttrail.Filter{ResourceID: []string{"claude"}}, false},
		{"result", agenttrail.Filter{Result: []string{"failure", "error"}}, false},
		{"org", agenttrail.Filter{Org: []string{"other"}}, false},
		{"project", agenttrail.Filter{Project: []string{"release"}}, false},
		{"status_code", agenttrail.Filter{StatusCode: []int{404, 500}}, false},
		{"status_code OR", agenttrail.Filter{StatusCode: []int{404, 200}}, true},
		{"producer_id", agenttrail.Filter{ProducerID: []string{"producer-2"}}, false},
		{"since inclusive", agenttrail.Filter{Since: at}, true},
		{"since after", agenttrail.Filter{Since: at.Add(time.Nanosecond)}, false},
		{"until exclusive", agenttrail.Filter{Until: at}, false},
		{"until after", agenttrail.Filter{Until: at.Add(time.Nanosecond)}, true},
		{"q in action", agenttrail.Filter{Q: "Chat.COMPLETIONS"}, true},
		{"q in description", agenttrail.Filter{Q: "SUMMARY"}, true},
		{"q in resource_id", agenttrail.Filter{Q: "de son"}, true},
		{"q in actor_name", agenttrail.Filter{Q: "release BOT"}, true},
		{"q not in actor_id", agenttrail.Filter{Q: "agent-7"}, false},
		{"q absent", agenttrail.Filter{Q: "deploy"}, false},
		{"q longer than the fields", agenttrail.Filter{Q: "asked for a summary\nof the release, and more"}, false},
	} {
		if got := c.f.Match(&e); got != c.want {
			t.Errorf("Match(%s) = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestFilterMatchFoldsASCIIOnly(t *testing.T) {
	e := agenttrail.Event{Description: "Ünïcode ÉTÉ and ASCII"}
	for _, c := range []struct {
		q    string
		want bool
	}{
		{"ascii", true},
		{"ÉTÉ", true},
		{"été", false}, // stores fold ASCII only, as SQL lower() does
		{"Ünïcode", true},
	} {
		f := agenttrail.Filter{Q: c.q}
		if got := f.Match(&e); got != c.want {
			t.Errorf("Match(q=%q) on %q = %v, want %v", c.q, e.Description, got, c.want)
		}
	}
}

func TestIntervalTruncate(t *testing.T) {
	nyc := time.FixedZone("EST", -5*3600)
	for _, c := range []struct {
		iv   agenttrail.Interval
		in   time.Time
		want time.Time
	}{
		{agenttrail.Hour, utc(2025, 6, 1, 12, 34, 56), utc(2025, 6, 1, 12, 0, 0)},
		{agenttrail.Hour, utc(2025, 6, 1, 12, 0, 0), utc(2025, 6, 1, 12, 0, 0)},
		{agenttrail.Hour, time.Date(2025, 6, 1, 7, 59, 0, 0, nyc), utc(2025, 6, 1, 12, 0, 0)},
		{agenttrail.Hour, time.Date(2025, 6, 1, 7, 45, 0, 0, time.FixedZone("NPT", 5*3600+45*60)), utc(2025, 6, 1, 2, 0, 0)},
		{agenttrail.Day, utc(2025, 6, 1, 23, 59, 59), utc(2025, 6, 1, 0, 0, 0)},
		{agenttrail.Day, time.Date(2025, 6, 1, 20, 0, 0, 0, nyc), utc(2025, 6, 2, 0, 0, 0)},
		{agenttrail.Week, utc(2025, 6, 1, 10, 0, 0), utc(2025, 5, 26, 0, 0, 0)},  // Sunday: the Monday before
		{agenttrail.Week, utc(2025, 6, 2, 0, 0, 0), utc(2025, 6, 2, 0, 0, 0)},    // Monday midnight
		{agenttrail.Week, utc(2025, 6, 2, 23, 0, 0), utc(2025, 6, 2, 0, 0, 0)},   // Monday night
		{agenttrail.Week, utc(2025, 6, 8, 23, 59, 59), utc(2025, 6, 2, 0, 0, 0)}, // the next Sunday
		{agenttrail.Week, utc(2025, 1, 1, 12, 0, 0), utc(2024, 12, 30, 0, 0, 0)}, // across the new year
		{agenttrail.Week, utc(2021, 1, 3, 0, 0, 0), utc(2020, 12, 28, 0, 0, 0)},
		{agenttrail.Week, time.Date(2025, 6, 1, 22, 0, 0, 0, nyc), utc(2025, 6, 2, 0, 0, 0)}, // Sunday in New York, Monday in UTC
	} {
		got := c.iv.Truncate(c.in)
		if !got.Equal(c.want) || got.Location() != time.UTC {
			t.Errorf("%s.Truncate(%v) = %v, want %v", c.iv, c.in, got, c.want)
		}
		if got.Weekday() != time.Monday && c.iv == agenttrail.Week {
			t.Errorf("%s.Truncate(%v) = %v, a %v", c.iv, c.in, got, got.Weekday())
		}
	}
}

func TestIntervalNext(t *testing.T) {
	for _, c := range []struct {
		iv          agenttrail.Interval
		start, want time.Time
	}{
		{agenttrail.Hour, utc(2024, 12, 31, 23, 0, 0), utc(2025, 1, 1, 0, 0, 0)},
		{agenttrail.Day, utc(2024, 2, 28, 0, 0, 0), utc(2024, 2, 29, 0, 0, 0)},
		{agenttrail.Day, utc(2024, 12, 31, 0, 0, 0), utc(2025, 1, 1, 0, 0, 0)},
		{agenttrail.Week, utc(2024, 12, 30, 0, 0, 0), utc(2025, 1, 6, 0, 0, 0)},
	} {
		if got := c.iv.Next(c.start); !got.Equal(c.want) {
			t.Errorf("%s.Next(%v) = %v, want %v", c.iv, c.start, got, c.want)
		}
	}
	// Every bucket of a year of weeks starts on a Monday, seven days apart.
	for w, start := 0, agenttrail.Week.Truncate(utc(2024, 1, 1, 0, 0, 0)); w < 60; w++ {
		next := agenttrail.Week.Next(start)
		if next.Sub(start) != 7*24*time.Hour || next.Weekday() != time.Monday || !agenttrail.Week.Truncate(next).Equal(next) {
			t.Fatalf("Week.Next(%v) = %v, want the next Monday", start, next)
		}
		start = next
	}
}

func utc(y int, m time.Month, d, h, min, s int) time.Time {
	return time.Date(y, m, d, h, min, s, 0, time.UTC)
}

func TestEmptySeries(t *testing.T) {
	since := time.Date(2025, 3, 5, 7, 23, 0, 0, time.UTC) // a Wednesday
	f := agenttrail.Filter{Since: since, Until: since.Add(3 * time.Hour)}
	got, err := agenttrail.EmptySeries(f, agenttrail.Hour, agenttrail.DimSource)
	if err != nil || len(got) != 4 || !got[0].Start.Equal(since.Truncate(time.Hour)) || got[3].By == nil {
		t.Fatalf("EmptySeries(3h from 07:23, hour) = %+v, %v; want 4 buckets from 07:00 with By maps", got, err)
	}
	if got, err := agenttrail.EmptySeries(f, agenttrail.Week, ""); err != nil || len(got) != 1 || got[0].By != nil || got[0].Start.Weekday() != time.Monday {
		t.Errorf("EmptySeries(week) = %+v, %v; want the week from Monday, no By", got, err)
	}
	wide := agenttrail.Filter{Since: since, Until: since.Add((agenttrail.MaxBuckets + 1) * time.Hour)}
	for _, c := range []struct {
		f     agenttrail.Filter
		iv    agenttrail.Interval
		by    agenttrail.Dimension
		field string
	}{
		{f, "minute", "", "interval"},
		{f, agenttrail.Hour, "colour", "by"},
		{agenttrail.Filter{Since: since}, agenttrail.Hour, "", "since"},
		{wide, agenttrail.Hour, "", "since"},
	} {
		if _, err := agenttrail.EmptySeries(c.f, c.iv, c.by); agenttrail.ErrorField(err) != c.field {
			t.Errorf("EmptySeries(%v, %q, %q) error = %v, want one naming %s", c.f, c.iv, c.by, err, c.field)
		}
	}
}
