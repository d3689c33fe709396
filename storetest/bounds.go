package storetest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
)

// testFilterBounds: every store answers a filter over the shared bounds
// (agenttrail.Filter.Check) with the same EINVALID error naming the field,
// on every read, and a filter at the bounds with an answer; a q holding
// NUL, which no stored text can hold, is refused alike.
func testFilterBounds(t *testing.T, s agenttrail.Store) {
	start := Base()
	stored := AppendAll(t, s, Events(40, 50, start, time.Hour), 50)
	values := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("agent-%04d", i)
		}
		out[0] = stored[0].ActorID
		return out
	}
	until := start.Add(2 * time.Hour)
	reads := func(f agenttrail.Filter) map[string]error {
		errs := map[string]error{}
		_, errs["Query"] = s.Query(t.Context(), agenttrail.Query{Filter: f, Limit: 10})
		_, errs["Get"] = s.Get(t.Context(), stored[0].ID, f)
		_, errs["Aggregate"] = s.Aggregate(t.Context(), f, agenttrail.DimSource)
		_, errs["Series"] = s.Series(t.Context(), f, agenttrail.Hour, "")
		_, errs["HeartbeatGaps"] = s.HeartbeatGaps(t.Context(), f, time.Minute)
		_, errs["SequenceGaps"] = s.SequenceGaps(t.Context(), f)
		return errs
	}
	for _, tc := range []struct {
		name  string
		f     agenttrail.Filter
		field string // "" when the filter is within the bounds
	}{
		{"4000 values", agenttrail.Filter{ActorID: values(4000)}, "actor_id"},
		{"1001 values over two fields", agenttrail.Filter{ActorID: values(600), ResourceID: values(401)}, "actor_id"},
		{"q with NUL", agenttrail.Filter{Q: "shell\x00"}, "q"},
		{"q too long", agenttrail.Filter{Q: strings.Repeat("a", agenttrail.MaxQBytes+1)}, "q"},
		{"1000 values", agenttrail.Filter{ActorID: values(agenttrail.MaxFilterValues)}, ""},
		{"q at the bound", agenttrail.Filter{Q: strings.Repeat("a", agenttrail.MaxQBytes)}, ""},
	} {
		tc.f.Since, tc.f.Until = start.Add(-time.Hour), until
		for read, err := range reads(tc.f) {
			switch {
			case tc.field == "" && err != nil && !(read == "Get" && agenttrail.ErrorCode(err) == agenttrail.ENOTFOUND):
				t.Errorf("%s with %s = %v, want an answer", read, tc.name, err)
			case tc.field != "" && (agenttrail.ErrorCode(err) != agenttrail.EINVALID || agenttrail.ErrorField(err) != tc.field):
				t.Errorf("%s with %s = %v, want EINVALID naming %s", read, tc.name, err, tc.field)
			}
		}
	}
}
