package postgres

import (
	"time"

	"github.com/agenttrail/agenttrail"
)

// readPlan says how Aggregate and Series read what a filter selects: whole
// days from rollups_daily, whole hours from rollups_hourly, and the rest
// (partial hours at unaligned edges, or everything when rollups cannot
// answer the filter) from events. Results are exact either way.
type readPlan struct {
	rollup bool
	dim    string   // the rollup rows to read
	keys   []string // when set, only rollup rows with these keys
	group  string   // the rollup column holding by's value: key, org or project ("" for none)
	days   []span   // read from rollups_daily
	hours  []span   // read from rollups_hourly
	raw    []agenttrail.Filter
}

// span is a time range [from, to); a zero bound is unbounded.
type span struct{ from, to time.Time }

// planRead plans a read of what f selects, grouped by by ("" for none).
// Rollups can answer when f constrains only org, project and time (columns
// of every rollup row), plus at most one dimension: by itself when by is
// set. With days unset, whole days are read as hours (hourly series).
func planRead(f agenttrail.Filter, by agenttrail.Dimension, days bool) readPlan {
	p := readPlan{raw: []agenttrail.Filter{f}}
	if f.Q != "" || len(f.ResourceID) > 0 || len(f.StatusCode) > 0 || len(f.ProducerID) > 0 ||
		len(f.NotSource) > 0 || len(f.NotAction) > 0 || len(f.TraceID) > 0 || len(f.SessionID) > 0 ||
		by == agenttrail.DimTraceID || by == agenttrail.DimSessionID {
		return p
	}
	group := ""
	switch by {
	case agenttrail.DimOrg, agenttrail.DimProject:
		group, by = string(by), ""
	case "":
	default:
		group = "key"
	}
	dim, keys := string(by), []string(nil)
	for _, d := range agenttrail.RolledDimensions {
		vals := *f.DimensionValues(d)
		if len(vals) == 0 {
			continue
		}
		if dim != "" && dim != string(d) {
			return p
		}
		dim, keys = string(d), vals
	}
	if dim == "" {
		dim = dimTotal
	}
	p = readPlan{rollup: true, dim: dim, keys: keys, group: group}
	since, until := f.Since, f.Until
	hs, he := since, until // the whole hours
	if !since.IsZero() {
		hs = ceilTo(since, time.Hour)
	}
	if !until.IsZero() {
		he = until.UTC().Truncate(time.Hour)
	}
	if !since.IsZero() && !until.IsZero() && !hs.Before(he) {
		return readPlan{raw: []agenttrail.Filter{f}} // within one or two partial hours
	}
	if !since.IsZero() && since.Before(hs) {
		edge := f
		edge.Until = hs
		p.raw = append(p.raw, edge)
	}
	if !until.IsZero() && he.Before(until) {
		edge := f
		edge.Since = he
		p.raw = append(p.raw, edge)
	}
	if days {
		ds, de := hs, he // the whole days
		if !hs.IsZero() {
			ds = ceilTo(hs, 24*time.Hour)
		}
		if !he.IsZero() {
			de = he.Truncate(24 * time.Hour)
		}
		if hs.IsZero() || he.IsZero() || ds.Before(de) {
			p.days = []span{{ds, de}}
			if !hs.IsZero() && hs.Before(ds) {
				p.hours = append(p.hours, span{hs, ds})
			}
			if !he.IsZero() && de.Before(he) {
				p.hours = append(p.hours, span{de, he})
			}
			return p
		}
	}
	p.hours = []span{{hs, he}}
	return p
}

// ceilTo returns the first multiple of d (from the Unix epoch, in UTC) at or
// after t; d is an hour or a day.
func ceilTo(t time.Time, d time.Duration) time.Time {
	c := t.UTC().Truncate(d)
	if c.Before(t) {
		c = c.Add(d)
	}
	return c
}
