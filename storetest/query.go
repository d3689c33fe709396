package storetest

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
)

// checkQuery runs q once and compares the page and its Next with the model.
func checkQuery(t *testing.T, s agenttrail.Store, stored []agenttrail.Event, q agenttrail.Query) {
	t.Helper()
	call := fmt.Sprintf("Query(%s, sort %s, limit %d)", filterString(q.Filter), q.Sort, q.Limit)
	want := Select(stored, q)
	p, err := s.Query(t.Context(), q)
	if err != nil {
		t.Fatalf("%s error: %v", call, err)
	}
	checkSeqs(t, call, p.Events, want[:min(q.Limit, len(want))])
	checkNext(t, call, q, p, len(want) > q.Limit)
}

// checkNext checks a page's Next: the last event's position when more
// follow; nil on the last page of a time sort; in seq order always set.
func checkNext(t *testing.T, call string, q agenttrail.Query, p agenttrail.Page, more bool) {
	t.Helper()
	switch {
	case more || q.Sort == agenttrail.SortSeq && len(p.Events) > 0:
		if p.Next == nil {
			t.Errorf("%s Next = nil, want the last event's position", call)
			return
		}
		last := agenttrail.PositionOf(&p.Events[len(p.Events)-1])
		if p.Next.Seq != last.Seq || q.Sort != agenttrail.SortSeq && micro(p.Next.Time) != micro(last.Time) {
			t.Errorf("%s Next = %v, want %v", call, *p.Next, last)
		}
	case q.Sort == agenttrail.SortSeq:
		if p.Next == nil {
			t.Errorf("%s (empty, seq order) Next = nil, want a position to poll from", call)
			return
		}
		var after int64
		if q.After != nil {
			after = q.After.Seq
		}
		if p.Next.Seq != after {
			t.Errorf("%s (empty, seq order) Next.Seq = %d, want %d", call, p.Next.Seq, after)
		}
	case p.Next != nil:
		t.Errorf("%s (last page) Next = %v, want nil", call, *p.Next)
	}
}

// sorts lists the three sort orders.
func sorts() [3]agenttrail.Sort {
	return [3]agenttrail.Sort{agenttrail.SortTimeDesc, agenttrail.SortTimeAsc, agenttrail.SortSeq}
}

func testQueryFilters(t *testing.T, s agenttrail.Store) {
	stored := AppendAll(t, s, Events(10, 1500, Base(), 72*time.Hour), 500)
	e := stored[7]
	tests := []agenttrail.Filter{
		{},
		{ActorID: []string{e.ActorID}},
		{ActorID: []string{"agent-01", "agent-02", "nobody"}},
		{ActorType: []string{"user", "system"}},
		{Source: []string{agenttrail.SourceLLM}},
		{Source: []string{agenttrail.SourceShell, agenttrail.SourceAWS}},
		{Action: []string{e.Action}},
		{Action: []string{"tools/call", "shell_exec"}},
		{ResourceType: []string{"model", "command"}},
		{ResourceID: []string{e.ResourceID}},
		{Result: []string{"failure"}},
		{Result: []string{"failure", "error"}},
		{Result: []string{"denied"}},
		{Result: []string{"denied", "success"}},
		{Org: []string{"acme"}},
		{Org: []string{"acme", "globex"}},
		{Org: []string{"initech"}},
		{Project: []string{""}},
		{Project: []string{"web", "data"}},
		{StatusCode: []int{403}},
		{StatusCode: []int{200, 201, 204}},
		{ProducerID: []string{e.ProducerID}},
		{Org: []string{"acme"}, Source: []string{agenttrail.SourceLLM}, Result: []string{"success"}},
		{ActorID: []string{"agent-03"}, Since: Base().Add(24 * time.Hour), Until: Base().Add(48 * time.Hour)},
		{Org: []string{"globex"}, Project: []string{"infra"}, ActorType: []string{"agent"}, StatusCode: []int{200, 403}},
		{Source: []string{agenttrail.SourceKube}, ResourceType: []string{"secrets"}, Result: []string{"failure"}},
		{Org: []string{"acme"}, Q: "github"},
		{NotSource: []string{agenttrail.SourceLLM}},
		{NotSource: []string{agenttrail.SourceShell, agenttrail.SourceAWS, "nothing"}, NotAction: []string{e.Action}},
		{Source: []string{agenttrail.SourceShell, agenttrail.SourceLLM}, NotSource: []string{agenttrail.SourceShell}},
		{Org: []string{"acme"}, NotAction: []string{"tools/call", "shell_exec"}, Since: Base().Add(24 * time.Hour)},
		{Action: []string{e.Action}, NotAction: []string{e.Action}}, // nothing
		{TraceID: []string{traced(stored).TraceID}},
		{TraceID: []string{traced(stored).TraceID, "ac3" + strings.Repeat("0", 28) + "2", "ffffffffffffffffffffffffffffffff"}},
		{TraceID: []string{traced(stored).TraceID}, Org: []string{"globex"}},
		{TraceID: []string{""}}, // the events of no trace
		{SessionID: []string{traced(stored).SessionID}},
		{SessionID: []string{"acme task 1", "globex task 3", "no such task"}, Since: Base().Add(24 * time.Hour)},
		{SessionID: []string{traced(stored).SessionID}, TraceID: []string{traced(stored).TraceID}, NotSource: []string{agenttrail.SourceShell}},
	}
	for _, f := range tests {
		for _, sort := range sorts() {
			checkQuery(t, s, stored, agenttrail.Query{Filter: f, Sort: sort, Limit: 200})
		}
		got := all(t, s, f)
		checkSeqs(t, "Query("+filterString(f)+", every page)", got, Select(stored, agenttrail.Query{Filter: f, Sort: agenttrail.SortSeq}))
	}
}

// traced returns the first of events that has a trace and a session.
func traced(events []agenttrail.Event) *agenttrail.Event {
	for i := range events {
		if events[i].TraceID != "" && events[i].SessionID != "" {
			return &events[i]
		}
	}
	panic("storetest: no generated event has a trace")
}

func testQueryTimeRange(t *testing.T, s agenttrail.Store) {
	stored := AppendAll(t, s, Events(11, 600, Base(), 6*time.Hour), 600)
	tests := []agenttrail.Filter{
		{Since: stored[10].Time},
		{Until: stored[10].Time},
		{Since: stored[10].Time, Until: stored[20].Time},
		{Since: stored[20].Time, Until: stored[20].Time.Add(time.Microsecond)},
		{Since: Base().Add(time.Hour), Until: Base().Add(2 * time.Hour)},
		{Since: Base().Add(-time.Hour), Until: Base()},
		{Since: Base().Add(5 * time.Hour).Add(time.Nanosecond)},
	}
	for _, f := range tests {
		if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
			f.Since, f.Until = f.Until, f.Since
		}
		for _, sort := range sorts() {
			checkQuery(t, s, stored, agenttrail.Query{Filter: f, Sort: sort, Limit: 200})
		}
	}
	// Since is inclusive, until exclusive: an event exactly at since is in,
	// one exactly at until is out.
	at := stored[30].Time
	in := all(t, s, agenttrail.Filter{Since: at, Until: at.Add(time.Microsecond)})
	if len(in) == 0 {
		t.Errorf("Query(since = an event's time) = 0 events, want it included")
	}
	out := all(t, s, agenttrail.Filter{Since: at.Add(-time.Minute), Until: at})
	for i := range out {
		if !out[i].Time.Before(at) {
			t.Errorf("Query(until = %v) returned an event at %v", at, out[i].Time)
		}
	}
}

func testQueryText(t *testing.T, s agenttrail.Store) {
	now := Base()
	mk := func(id, action, desc, resID, name, meta string) agenttrail.Event {
		e := agenttrail.Event{ID: id, Time: now, ActorType: agenttrail.ActorAgent, ActorID: "a", ActorName: name,
			Source: "mcp-tool", Action: action, ResourceID: resID, Description: desc, Result: agenttrail.ResultSuccess,
			Org: "o", ReceivedAt: now}
		if meta != "" {
			e.Metadata = []byte(meta)
		}
		if err := e.Validate(now); err != nil {
			t.Fatal(err)
		}
		return e
	}
	stored := AppendAll(t, s, []agenttrail.Event{
		mk("in-action", "GET /Secrets/Prod", "", "", "", ""),
		mk("in-desc", "x", "Deleted the PROD database", "", "", ""),
		mk("in-resource", "x", "", "arn:aws:s3:::Prod-Bucket", "", ""),
		mk("in-name", "x", "", "", "ProdBot", ""),
		mk("in-metadata-only", "x", "", "", "", `{"note":"prod"}`),
		mk("percent", "x", "disk 50% full", "", "", ""),
		mk("underscore", "x", "snake_case_name", "", "", ""),
		mk("backslash", "x", `C:\Windows\prod`, "", "", ""),
		mk("unicode", "x", "Ünïcode Straße", "", "", ""),
		mk("plain", "x", "nothing to see", "", "", ""),
	}, 10)
	tests := []struct {
		q    string
		want int // expected matches; checked against the model too
	}{
		{"prod", 5},
		{"PROD", 5},
		{"pRoD", 5},
		{"secrets/prod", 1},
		{"50%", 1},
		{"%", 1},
		{"_", 1},
		{"e_c", 1},
		{`\prod`, 1},
		{`\`, 1},
		{"ünïcode", 0}, // ASCII case folding only: Ü is not ü
		{"Ünïcode", 1},
		{"STRASSE", 0},
		{"straße", 1},
		{"nothing-matches-this", 0},
	}
	for _, tc := range tests {
		f := agenttrail.Filter{Q: tc.q}
		want := Select(stored, agenttrail.Query{Filter: f, Sort: agenttrail.SortSeq})
		if len(want) != tc.want {
			t.Fatalf("model: q=%q matches %d events, test expects %d", tc.q, len(want), tc.want)
		}
		checkQuery(t, s, stored, agenttrail.Query{Filter: f, Sort: agenttrail.SortSeq, Limit: 50})
	}
}

// RandomFilter returns a filter of one to three fields whose values are
// drawn mostly from events (so it matches some) and sometimes not, with
// time bounds that are sometimes an event's exact time and sometimes not
// aligned to anything.
func RandomFilter(r *rand.Rand, events []agenttrail.Event) agenttrail.Filter {
	var f agenttrail.Filter
	ev := func() *agenttrail.Event { return &events[r.IntN(len(events))] }
	vals := func(get func(e *agenttrail.Event) string) []string {
		out := []string{get(ev())}
		if r.IntN(3) == 0 {
			out = append(out, get(ev()))
		}
		if r.IntN(8) == 0 {
			out = append(out, "no-such-value")
		}
		return out
	}
	for n := 1 + r.IntN(3); n > 0; n-- {
		switch r.IntN(15) {
		case 0:
			f.ActorID = vals(func(e *agenttrail.Event) string { return e.ActorID })
		case 1:
			f.ActorType = vals(func(e *agenttrail.Event) string { return string(e.ActorType) })
		case 2:
			f.Source = vals(func(e *agenttrail.Event) string { return e.Source })
		case 3:
			f.Action = vals(func(e *agenttrail.Event) string { return e.Action })
		case 4:
			f.ResourceType = vals(func(e *agenttrail.Event) string { return e.ResourceType })
		case 5:
			f.ResourceID = vals(func(e *agenttrail.Event) string { return e.ResourceID })
		case 6:
			f.Result = vals(func(e *agenttrail.Event) string { return string(e.Result) })
		case 7:
			f.Org = vals(func(e *agenttrail.Event) string { return e.Org })
		case 8:
			f.Project = vals(func(e *agenttrail.Event) string { return e.Project })
		case 9:
			f.StatusCode = append(f.StatusCode, ev().StatusCode, 200)
		case 10:
			f.ProducerID = vals(func(e *agenttrail.Event) string { return e.ProducerID })
		case 11:
			a, b := ev().Time, ev().Time
			if r.IntN(2) == 0 {
				a = a.Add(time.Duration(r.IntN(3600e6)) * time.Microsecond)
			}
			if b.Before(a) {
				a, b = b, a
			}
			if !a.Before(b) {
				b = a.Add(time.Hour)
			}
			f.Since, f.Until = a, b
		case 12:
			f.Q = randomSubstring(r, ev())
		case 13:
			f.TraceID = vals(func(e *agenttrail.Event) string { return e.TraceID })
		case 14:
			f.SessionID = vals(func(e *agenttrail.Event) string { return e.SessionID })
		}
	}
	return f
}

func randomSubstring(r *rand.Rand, e *agenttrail.Event) string {
	src := []string{e.Action, e.Description, e.ResourceID, e.ActorName}[r.IntN(4)]
	if src == "" || !isASCII(src) {
		return "call"
	}
	i := r.IntN(len(src))
	j := min(len(src), i+1+r.IntN(8))
	b := []byte(src[i:j])
	for k := range b {
		if r.IntN(2) == 0 && 'a' <= b[k] && b[k] <= 'z' {
			b[k] -= 'a' - 'A'
		}
	}
	return strings.TrimSpace(string(b))
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func testQueryRandom(t *testing.T, s agenttrail.Store) {
	stored := AppendAll(t, s, Events(12, 2000, Base(), 10*24*time.Hour), 1000)
	r := rand.New(rand.NewPCG(12, 34))
	for i := 0; i < 150; i++ {
		f := RandomFilter(r, stored)
		q := agenttrail.Query{Filter: f, Sort: sorts()[r.IntN(3)], Limit: 1 + r.IntN(agenttrail.MaxLimit)}
		checkQuery(t, s, stored, q)
		if i%5 == 0 {
			q.Limit = 50
			checkSeqs(t, fmt.Sprintf("Query(%s, sort %s, every page)", filterString(f), q.Sort),
				collect(t, s, q), Select(stored, q))
		}
	}
}
