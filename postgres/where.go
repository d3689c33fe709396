package postgres

import (
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/agenttrail/agenttrail"
)

// args collects the parameters of one statement.
type args []any

// add appends v and returns its placeholder.
func (a *args) add(v any) string {
	*a = append(*a, v)
	return "$" + strconv.Itoa(len(*a))
}

// dimColumn returns the events column of a dimension.
func dimColumn(d agenttrail.Dimension) string {
	// Every dimension is a column of the same name; the switch keeps user
	// input out of SQL text.
	switch d {
	case agenttrail.DimSource, agenttrail.DimActorType, agenttrail.DimActorID, agenttrail.DimResult,
		agenttrail.DimAction, agenttrail.DimResourceType, agenttrail.DimOrg, agenttrail.DimProject,
		agenttrail.DimModel, agenttrail.DimTraceID, agenttrail.DimSessionID:
		return string(d)
	}
	panic("postgres: unknown dimension " + strconv.Quote(string(d)))
}

// conditions returns the SQL conditions on events that select what f
// matches, with the filter values as parameters in a. An empty result
// matches everything.
func conditions(f agenttrail.Filter, a *args) []string {
	var c []string
	text := func(col string, vals []string) {
		if len(vals) > 0 {
			c = append(c, anyText(col, vals, a))
		}
	}
	text("actor_id", f.ActorID)
	text("actor_type", f.ActorType)
	text("source", f.Source)
	text("action", f.Action)
	text("resource_type", f.ResourceType)
	text("resource_id", f.ResourceID)
	text("result", f.Result)
	text("org", f.Org)
	text("project", f.Project)
	text("producer_id", f.ProducerID)
	task := func(col string, vals []string) {
		// The condition of the column's partial index, stated so that
		// the planner can use it whatever the parameters' values.
		if len(vals) > 0 && !slices.Contains(vals, "") {
			c = append(c, col+" <> ''")
		}
	}
	text("trace_id", f.TraceID)
	task("trace_id", f.TraceID)
	text("session_id", f.SessionID)
	task("session_id", f.SessionID)
	if keep := storableOnly(f.NotSource); len(keep) > 0 {
		c = append(c, "source <> ALL("+a.add(keep)+"::text[])")
	}
	if keep := storableOnly(f.NotAction); len(keep) > 0 {
		c = append(c, "action <> ALL("+a.add(keep)+"::text[])")
	}
	if len(f.StatusCode) > 0 {
		codes := make([]int32, len(f.StatusCode))
		for i, n := range f.StatusCode {
			codes[i] = int32(n)
		}
		c = append(c, "status_code = ANY("+a.add(codes)+"::integer[])")
	}
	c = append(c, timeRange(f.Since, f.Until, "time", a)...)
	if f.Q != "" {
		if !storable(f.Q) {
			c = append(c, "false")
		} else {
			// lower() under the C collation folds ASCII only, like
			// Filter.Match; strpos needs no escaping of % and _.
			q := a.add(lowerASCII(f.Q))
			var ors []string
			for _, col := range []string{"action", "description", "resource_id", "actor_name"} {
				ors = append(ors, "strpos(lower("+col+` COLLATE "C"), `+q+") > 0")
			}
			c = append(c, "("+strings.Join(ors, " OR ")+")")
		}
	}
	return c
}

// anyText returns the condition col = ANY(vals). A value PostgreSQL cannot
// store (invalid UTF-8, NUL) matches no event; passing it would make the
// statement fail instead, so it is left out.
func anyText(col string, vals []string, a *args) string {
	keep := storableOnly(vals)
	if len(keep) == 0 {
		return "false"
	}
	return col + " = ANY(" + a.add(keep) + "::text[])"
}

// storableOnly returns the values a text column can hold: one that cannot
// (see storable) equals no stored value.
func storableOnly(vals []string) []string {
	keep := make([]string, 0, len(vals))
	for _, v := range vals {
		if storable(v) {
			keep = append(keep, v)
		}
	}
	return keep
}

// timeRange returns the conditions since <= col < until; a zero bound does
// not constrain. PostgreSQL keeps microseconds, so both bounds round up to
// the next microsecond: for a stored time t, t >= since and t < until hold
// exactly when they hold for the rounded bounds.
func timeRange(since, until time.Time, col string, a *args) []string {
	var c []string
	if !since.IsZero() {
		c = append(c, col+" >= "+a.add(ceilMicro(since)))
	}
	if !until.IsZero() {
		c = append(c, col+" < "+a.add(ceilMicro(until)))
	}
	return c
}

// ceilMicro returns the first whole microsecond at or after t.
func ceilMicro(t time.Time) time.Time {
	m := t.Truncate(time.Microsecond)
	if m.Before(t) {
		m = m.Add(time.Microsecond)
	}
	return m
}

// whereClause joins conditions into a WHERE clause, or "" for none.
func whereClause(c []string) string {
	if len(c) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(c, " AND ")
}

// storable reports whether s can be a PostgreSQL text value.
func storable(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
