package sqlite

import (
	"context"
	"database/sql"
	"sort"
	"strings"
	"time"

	"github.com/agenttrail/agenttrail"
)

// groupKey identifies one group of a grouping: an hour start (0 when the
// grouping is not by hour) and a key of the by dimension ("" without one).
type groupKey struct {
	hour int64
	key  string
}

// Aggregate groups the events f matches by by. It reads rollups for the
// whole hours of the range when f constrains only org, project, time and at
// most one rolled-up dimension (by's own), and the events table for the
// partial hours at either end and for every other filter, so the result is
// exact either way.
func (s *Store) Aggregate(ctx context.Context, f agenttrail.Filter, by agenttrail.Dimension) ([]agenttrail.Bucket, error) {
	if !by.Valid() {
		return nil, agenttrail.Invalid("by", "must be one of source, actor_type, actor_id, result, action, resource_type, org, project, model, not %q", by)
	}
	groups, err := s.group(ctx, &f, by, false)
	if err != nil {
		return nil, formatError("aggregate", err)
	}
	out := make([]agenttrail.Bucket, 0, len(groups))
	for k, u := range groups {
		if u.count > 0 {
			out = append(out, u.bucket(k.key))
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Key < out[j].Key
	})
	return out, nil
}

// Series counts the events f matches per interval from iv.Truncate(f.Since)
// to f.Until, empty buckets included, from hourly groups read as Aggregate
// reads them.
func (s *Store) Series(ctx context.Context, f agenttrail.Filter, iv agenttrail.Interval, by agenttrail.Dimension) ([]agenttrail.TimeBucket, error) {
	switch iv {
	case agenttrail.Hour, agenttrail.Day, agenttrail.Week:
	default:
		return nil, agenttrail.Invalid("interval", "must be hour, day or week, not %q", iv)
	}
	if by != "" && !by.Valid() {
		return nil, agenttrail.Invalid("by", "must be one of source, actor_type, actor_id, result, action, resource_type, org, project, model, not %q", by)
	}
	if f.Since.IsZero() || f.Until.IsZero() || !f.Since.Before(f.Until) {
		return nil, agenttrail.Invalid("since", "a series needs since before until")
	}
	var out []agenttrail.TimeBucket
	index := map[int64]int{}
	for t := iv.Truncate(f.Since); t.Before(f.Until); t = iv.Next(t) {
		if len(out) == agenttrail.MaxBuckets {
			return nil, agenttrail.Invalid("since", "the range holds more than %d %s buckets", agenttrail.MaxBuckets, iv)
		}
		index[t.UnixNano()] = len(out)
		b := agenttrail.TimeBucket{Start: t}
		if by != "" {
			b.By = map[string]int64{}
		}
		out = append(out, b)
	}
	groups, err := s.group(ctx, &f, by, true)
	if err != nil {
		return nil, formatError("series", err)
	}
	for k, u := range groups {
		if u.count == 0 {
			continue
		}
		i, ok := index[iv.Truncate(time.Unix(0, k.hour)).UnixNano()]
		if !ok {
			continue
		}
		b := &out[i]
		b.Count += u.count
		b.CostUSD += float64(u.costNUSD) / 1e9
		if by != "" {
			b.By[k.key] += u.count
		}
	}
	return out, nil
}

// rollupPlan returns the rollup dimension that can answer a grouping of f
// by by (by "" meaning none), and false when only the events table can.
func rollupPlan(f *agenttrail.Filter, by agenttrail.Dimension) (dim int, values []string, ok bool) {
	if f.Q != "" || len(f.ResourceID) > 0 || len(f.StatusCode) > 0 || len(f.ProducerID) > 0 {
		return 0, nil, false
	}
	dim = dimCode(by)
	for _, c := range []struct {
		d    agenttrail.Dimension
		vals []string
	}{
		{agenttrail.DimSource, f.Source}, {agenttrail.DimActorType, f.ActorType}, {agenttrail.DimActorID, f.ActorID},
		{agenttrail.DimResult, f.Result}, {agenttrail.DimAction, f.Action}, {agenttrail.DimResourceType, f.ResourceType},
	} {
		if len(c.vals) == 0 {
			continue
		}
		if dim != 0 && dim != dimCode(c.d) {
			return 0, nil, false // two dimensions: no single rollup has both
		}
		dim, values = dimCode(c.d), c.vals
	}
	if dim == 0 {
		dim = dimResult // any dimension sums to the totals; result has the fewest keys
	}
	return dim, values, true
}

// group sums usage per (hour, by key) — or per by key when byHour is false —
// over the events f matches, within one read transaction so rollups and
// events come from the same snapshot.
func (s *Store) group(ctx context.Context, f *agenttrail.Filter, by agenttrail.Dimension, byHour bool) (map[groupKey]*usage, error) {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	out := map[groupKey]*usage{}
	dim, values, ok := rollupPlan(f, by)
	if !ok {
		return out, s.groupEvents(ctx, tx, f, by, byHour, f.Since, f.Until, out)
	}
	// Whole hours come from the rollups; partial hours at either end from
	// the events.
	lo, hi := f.Since, f.Until
	if !lo.IsZero() && lo.Truncate(time.Hour) != lo {
		lo = lo.Truncate(time.Hour).Add(time.Hour)
	}
	if !hi.IsZero() {
		hi = hi.Truncate(time.Hour)
	}
	if !lo.IsZero() && !hi.IsZero() && !lo.Before(hi) {
		return out, s.groupEvents(ctx, tx, f, by, byHour, f.Since, f.Until, out)
	}
	if !lo.Equal(f.Since) {
		if err := s.groupEvents(ctx, tx, f, by, byHour, f.Since, lo, out); err != nil {
			return nil, err
		}
	}
	if err := groupRollups(ctx, tx, f, by, byHour, dim, values, lo, hi, out); err != nil {
		return nil, err
	}
	if !hi.Equal(f.Until) {
		if err := s.groupEvents(ctx, tx, f, by, byHour, hi, f.Until, out); err != nil {
			return nil, err
		}
	}
	return out, tx.Commit()
}

const usageSums = "sum(count), sum(input_tokens), sum(output_tokens), sum(cache_read_tokens), " +
	"sum(cache_write_tokens), sum(reasoning_tokens), sum(cost_nusd)"

// eventSums are usageSums over the events table; the cost is rounded per
// event exactly as the rollups round it.
const eventSums = "count(*), sum(input_tokens), sum(output_tokens), sum(cache_read_tokens), " +
	"sum(cache_write_tokens), sum(reasoning_tokens), sum(CAST(round(coalesce(cost_usd, 0) * 1e9) AS INTEGER))"

func groupRollups(ctx context.Context, tx *sql.Tx, f *agenttrail.Filter, by agenttrail.Dimension, byHour bool, dim int, values []string, lo, hi time.Time, out map[groupKey]*usage) error {
	w := &where{}
	w.add("dim = ?", dim)
	if !lo.IsZero() {
		w.add("hour >= ?", lo.UnixNano())
	}
	if !hi.IsZero() {
		w.add("hour < ?", hi.UnixNano())
	}
	w.in("org", f.Org)
	w.in("project", f.Project)
	w.in("key", values)
	keyExpr := "''"
	switch by {
	case "":
	case agenttrail.DimOrg, agenttrail.DimProject:
		keyExpr = string(by)
	default:
		keyExpr = "key"
	}
	return scanGroups(ctx, tx, "rollups", usageSums, keyExpr, "hour", byHour, w, out)
}

func (s *Store) groupEvents(ctx context.Context, tx *sql.Tx, f *agenttrail.Filter, by agenttrail.Dimension, byHour bool, since, until time.Time, out map[groupKey]*usage) error {
	w := filterWhere(f)
	w.timeRange(since, until)
	keyExpr := "''"
	if by != "" {
		keyExpr = dimColumn(by)
	}
	return scanGroups(ctx, tx, "events", eventSums, keyExpr, "time - time % 3600000000000", byHour, w, out)
}

func scanGroups(ctx context.Context, tx *sql.Tx, table, sums, keyExpr, hourExpr string, byHour bool, w *where, out map[groupKey]*usage) error {
	if !byHour {
		hourExpr = "0"
	}
	var b strings.Builder
	b.WriteString("SELECT " + hourExpr + " AS h, " + keyExpr + " AS k, " + sums + " FROM " + table + " WHERE " + w.String())
	b.WriteString(" GROUP BY h, k")
	rows, err := tx.QueryContext(ctx, b.String(), w.args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var k groupKey
		var u usage
		var in, o, cr, cw, rs, cost sql.NullInt64
		if err := rows.Scan(&k.hour, &k.key, &u.count, &in, &o, &cr, &cw, &rs, &cost); err != nil {
			return err
		}
		u.input, u.output, u.cacheRead, u.cacheWrite, u.reasoning, u.costNUSD = in.Int64, o.Int64, cr.Int64, cw.Int64, rs.Int64, cost.Int64
		if x := out[k]; x != nil {
			x.add(u)
		} else {
			out[k] = &u
		}
	}
	return rows.Err()
}
