package storetest

import (
	"sort"
	"time"

	"github.com/agenttrail/agenttrail"
)

// The functions of this file are the reference model the suite compares
// stores against: plain Go over the events a test appended, with the Filter
// semantics of agenttrail.Filter.Match. Events must carry the Seq their
// Append assigned.

// Select returns every event of events that q.Filter matches, in q.Sort
// order, strictly after q.After when set. It ignores q.Limit.
func Select(events []agenttrail.Event, q agenttrail.Query) []agenttrail.Event {
	var out []agenttrail.Event
	for i := range events {
		e := &events[i]
		if e.Seq == 0 || !q.Filter.Match(e) {
			continue
		}
		if q.After != nil && !After(q.Sort, *q.After, agenttrail.PositionOf(e)) {
			continue
		}
		out = append(out, *e)
	}
	sort.Slice(out, func(i, j int) bool {
		return After(q.Sort, agenttrail.PositionOf(&out[i]), agenttrail.PositionOf(&out[j]))
	})
	return out
}

// After reports whether position p comes strictly after position a in sort
// order s. Times compare at microsecond precision, the least a store keeps.
func After(s agenttrail.Sort, a, p agenttrail.Position) bool {
	at, pt := a.Time.Truncate(time.Microsecond), p.Time.Truncate(time.Microsecond)
	switch s {
	case agenttrail.SortSeq:
		return p.Seq > a.Seq
	case agenttrail.SortTimeAsc:
		return pt.After(at) || pt.Equal(at) && p.Seq > a.Seq
	default:
		return pt.Before(at) || pt.Equal(at) && p.Seq < a.Seq
	}
}

// Aggregate returns the buckets a store's Aggregate must return for events:
// one per distinct value of by among the events f matches, largest count
// first, ties by key.
func Aggregate(events []agenttrail.Event, f agenttrail.Filter, by agenttrail.Dimension) []agenttrail.Bucket {
	m := map[string]*agenttrail.Bucket{}
	for i := range events {
		e := &events[i]
		if e.Seq == 0 || !f.Match(e) {
			continue
		}
		k := e.DimensionValue(by)
		b := m[k]
		if b == nil {
			b = &agenttrail.Bucket{Key: k}
			m[k] = b
		}
		b.AddEvent(e)
	}
	out := make([]agenttrail.Bucket, 0, len(m))
	for _, b := range m {
		out = append(out, *b)
	}
	SortBuckets(out)
	return out
}

// SortBuckets orders buckets as Aggregate returns them: largest count
// first, ties by key.
func SortBuckets(b []agenttrail.Bucket) {
	sort.Slice(b, func(i, j int) bool {
		if b[i].Count != b[j].Count {
			return b[i].Count > b[j].Count
		}
		return b[i].Key < b[j].Key
	})
}

// Series returns the buckets a store's Series must return for events: one
// per interval from iv.Truncate(f.Since) up to f.Until, empty ones included.
// By is nil when by is empty and a (possibly empty) map otherwise.
func Series(events []agenttrail.Event, f agenttrail.Filter, iv agenttrail.Interval, by agenttrail.Dimension) []agenttrail.TimeBucket {
	var out []agenttrail.TimeBucket
	index := map[time.Time]int{}
	for t := iv.Truncate(f.Since); t.Before(f.Until); t = iv.Next(t) {
		index[t] = len(out)
		b := agenttrail.TimeBucket{Start: t}
		if by != "" {
			b.By = map[string]int64{}
		}
		out = append(out, b)
	}
	for i := range events {
		e := &events[i]
		if e.Seq == 0 || !f.Match(e) {
			continue
		}
		j, ok := index[iv.Truncate(e.Time)]
		if !ok {
			continue
		}
		b := &out[j]
		b.AddEvent(e)
		if by != "" {
			b.By[e.DimensionValue(by)]++
		}
	}
	return out
}
