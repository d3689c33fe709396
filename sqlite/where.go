package sqlite

import (
	"slices"
	"strings"
	"time"

	"github.com/agenttrail/agenttrail"
)

// where builds the SQL condition of a Filter over the events table, with
// its arguments. Every value is a bound parameter; only column names, which
// come from this file, are written into the SQL.
type where struct {
	conds []string
	args  []any
}

func (w *where) add(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, args...)
}

// in adds "col = ?" or "col IN (?, …)"; an empty set does not constrain.
func (w *where) in(col string, vals []string) {
	switch len(vals) {
	case 0:
	case 1:
		w.add(col+" = ?", vals[0])
	default:
		w.conds = append(w.conds, col+" IN ("+strings.TrimSuffix(strings.Repeat("?,", len(vals)), ",")+")")
		for _, v := range vals {
			w.args = append(w.args, v)
		}
	}
}

// task adds "col IN (…)" for trace_id or session_id, and the condition of
// their partial indexes (the column is not empty) when no value is empty:
// SQLite uses a partial index only for a query that states its condition.
func (w *where) task(col string, vals []string) {
	if len(vals) == 0 {
		return
	}
	w.in(col, vals)
	if !slices.Contains(vals, "") {
		w.conds = append(w.conds, col+" <> ''")
	}
}

// notIn adds "col NOT IN (?, …)"; an empty set does not constrain.
func (w *where) notIn(col string, vals []string) {
	if len(vals) == 0 {
		return
	}
	w.conds = append(w.conds, col+" NOT IN ("+strings.TrimSuffix(strings.Repeat("?,", len(vals)), ",")+")")
	for _, v := range vals {
		w.args = append(w.args, v)
	}
}

// String returns the condition, "1" when there is none.
func (w *where) String() string {
	if len(w.conds) == 0 {
		return "1"
	}
	return strings.Join(w.conds, " AND ")
}

// checkFilter returns an EINVALID error for a filter over the bounds every
// store shares (agenttrail.Filter.Check); they keep statements under
// SQLite's 32,766 bound parameters.
func checkFilter(f *agenttrail.Filter) error { return f.Check() }

// filterWhere returns the condition for f's fields other than its time range.
func filterWhere(f *agenttrail.Filter) *where {
	w := &where{}
	w.in("actor_id", f.ActorID)
	w.in("actor_type", f.ActorType)
	w.in("source", f.Source)
	w.in("action", f.Action)
	w.in("resource_type", f.ResourceType)
	w.in("resource_id", f.ResourceID)
	w.in("result", f.Result)
	w.in("org", f.Org)
	w.in("project", f.Project)
	w.in("producer_id", f.ProducerID)
	w.task("trace_id", f.TraceID)
	w.task("session_id", f.SessionID)
	w.notIn("source", f.NotSource)
	w.notIn("action", f.NotAction)
	if len(f.StatusCode) > 0 {
		w.conds = append(w.conds, "status_code IN ("+strings.TrimSuffix(strings.Repeat("?,", len(f.StatusCode)), ",")+")")
		for _, c := range f.StatusCode {
			w.args = append(w.args, c)
		}
	}
	if f.Q != "" {
		// SQLite's LIKE folds ASCII case only, which is the contract of
		// Filter.Q; % and _ in q are escaped to match literally.
		p := "%" + escapeLike(f.Q) + "%"
		w.add(`(action LIKE ? ESCAPE '\' OR description LIKE ? ESCAPE '\' OR resource_id LIKE ? ESCAPE '\' OR actor_name LIKE ? ESCAPE '\')`, p, p, p, p)
	}
	return w
}

// timeRange adds since <= time < until; a zero bound does not constrain.
func (w *where) timeRange(since, until time.Time) {
	if !since.IsZero() {
		w.add("time >= ?", since.UnixNano())
	}
	if !until.IsZero() {
		w.add("time < ?", until.UnixNano())
	}
}

func escapeLike(s string) string {
	if !strings.ContainsAny(s, `%_\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '%' || c == '_' || c == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// nanos stores a time as unix nanoseconds, and the zero time as 0.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// fromNanos is the inverse of nanos.
func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
