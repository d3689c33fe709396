package postgres

import (
	"time"

	"github.com/agenttrail/agenttrail"
)

// readPlan says how Aggregate and Series read what a filter selects: whole
// hours from rollups, and the rest (the partial hours at unaligned edges, or
// everything when rollups cannot answer the filter) from events. Results are
// exact either way.
type readPlan struct {
	rollup   bool
	dim      agenttrail.Dimension // the rollup rows to read
	keys     []string             // when set, only rollup rows with these keys
	group    string               // the rollups column holding by's value: key, org or project
	from, to time.Time            // whole hours [from, to) read from rollups; zero is unbounded
	raw      []agenttrail.Filter  // parts read from events
}

// planRead plans a read of what f selects, grouped by by ("" for none).
// Rollups can answer when f constrains only org, project and time (columns
// of every rollup row), plus at most one dimension: by itself when by is
// set. Grouping by org or project reads any dimension's rows.
func planRead(f agenttrail.Filter, by agenttrail.Dimension) readPlan {
	p := readPlan{raw: []agenttrail.Filter{f}}
	if f.Q != "" || len(f.ResourceID) > 0 || len(f.StatusCode) > 0 || len(f.ProducerID) > 0 {
		return p
	}
	group := "key"
	if by == agenttrail.DimOrg || by == agenttrail.DimProject {
		group, by = string(by), ""
	}
	dim, keys := by, []string(nil)
	for _, c := range []struct {
		dim  agenttrail.Dimension
		vals []string
	}{
		{agenttrail.DimActorID, f.ActorID}, {agenttrail.DimActorType, f.ActorType},
		{agenttrail.DimSource, f.Source}, {agenttrail.DimAction, f.Action},
		{agenttrail.DimResourceType, f.ResourceType}, {agenttrail.DimResult, f.Result},
	} {
		if len(c.vals) == 0 {
			continue
		}
		if dim != "" && dim != c.dim {
			return p
		}
		dim, keys = c.dim, c.vals
	}
	if dim == "" {
		dim = agenttrail.DimSource // every event has exactly one row of each dimension
	}
	from, to := f.Since, f.Until
	if !from.IsZero() {
		from = ceilHour(from)
	}
	if !to.IsZero() {
		to = to.UTC().Truncate(time.Hour)
	}
	if !from.IsZero() && !to.IsZero() && !from.Before(to) {
		return p // within one or two partial hours: events only
	}
	p = readPlan{rollup: true, dim: dim, keys: keys, group: group, from: from, to: to}
	if !f.Since.IsZero() && f.Since.Before(from) {
		edge := f
		edge.Until = from
		p.raw = append(p.raw, edge)
	}
	if !f.Until.IsZero() && to.Before(f.Until) {
		edge := f
		edge.Since = to
		p.raw = append(p.raw, edge)
	}
	return p
}

// ceilHour returns the first whole hour at or after t.
func ceilHour(t time.Time) time.Time {
	h := t.UTC().Truncate(time.Hour)
	if h.Before(t) {
		h = h.Add(time.Hour)
	}
	return h
}
