package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/agenttrail/agenttrail"
)

// groupKey identifies one group of a grouping: a bucket start (an hour or a
// day; 0 when the grouping is not over time) and a key of the by dimension
// ("" without one).
type groupKey struct {
	hour int64
	key  string
}

// Aggregate groups the events f matches by by. When f constrains only org,
// project, time and at most one rolled-up dimension (by's own), it reads day
// rollups for the whole days of the range, hourly rollups for the other
// whole hours and the events table for the partial hours at either end;
// any other filter is a GROUP BY over the events. The result is exact
// either way.
func (s *Store) Aggregate(ctx context.Context, f agenttrail.Filter, by agenttrail.Dimension) ([]agenttrail.Bucket, error) {
	if !by.Valid() {
		return nil, agenttrail.InvalidDimension(by)
	}
	if err := checkFilter(&f); err != nil {
		return nil, err
	}
	groups, err := s.group(ctx, &f, by, 0)
	if err != nil {
		return nil, formatError("aggregate", err)
	}
	out := make([]agenttrail.Bucket, 0, len(groups))
	for k, u := range groups {
		if u.count > 0 {
			out = append(out, agenttrail.Bucket{Key: k.key, Usage: u.totals()})
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
// to f.Until, empty buckets included, from hour groups (hour interval) or
// day groups (day and week) read as Aggregate reads them.
func (s *Store) Series(ctx context.Context, f agenttrail.Filter, iv agenttrail.Interval, by agenttrail.Dimension) ([]agenttrail.TimeBucket, error) {
	if err := checkFilter(&f); err != nil {
		return nil, err
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		return nil, agenttrail.Invalid("since", "a series needs since before until")
	}
	out, err := agenttrail.EmptySeries(f, iv, by)
	if err != nil {
		return nil, err
	}
	index := make(map[int64]int, len(out))
	for i, b := range out {
		index[b.Start.UnixNano()] = i
	}
	gran := dayNS // day and week buckets are whole days
	if iv == agenttrail.Hour {
		gran = hourNS
	}
	groups, err := s.group(ctx, &f, by, gran)
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
		b.Add(u.totals())
		if by != "" {
			b.By[k.key] += u.count
		}
	}
	return out, nil
}

// rollupPlan returns the rollup dimension that can answer a grouping of f
// by by (by "" meaning none), and false when only the events table can.
func rollupPlan(f *agenttrail.Filter, by agenttrail.Dimension) (dim int, values []string, ok bool) {
	if f.Q != "" || len(f.ResourceID) > 0 || len(f.StatusCode) > 0 || len(f.ProducerID) > 0 ||
		len(f.NotSource) > 0 || len(f.NotAction) > 0 || len(f.TraceID) > 0 || len(f.SessionID) > 0 ||
		by == agenttrail.DimTraceID || by == agenttrail.DimSessionID {
		return 0, nil, false
	}
	dim = dimCode(by)
	for _, d := range agenttrail.RolledDimensions {
		vals := *f.DimensionValues(d)
		if len(vals) == 0 {
			continue
		}
		if dim != 0 && dim != dimCode(d) {
			return 0, nil, false // two dimensions: no single rollup has both
		}
		dim, values = dimCode(d), vals
	}
	if dim == 0 {
		dim = dimTotal
	}
	return dim, values, true
}

// group sums usage per (bucket, by key) — buckets gran nanoseconds wide
// (hourNS or dayNS), or one bucket when gran is 0 — over the events f
// matches, within one read transaction so that rollups and events come
// from the same snapshot. It splits the range: partial hours at either end
// from the events, whole days (when gran allows and the days are folded)
// from the day rollups, the remaining whole hours from the hourly rollups.
func (s *Store) group(ctx context.Context, f *agenttrail.Filter, by agenttrail.Dimension, gran int64) (map[groupKey]*usage, error) {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	out := map[groupKey]*usage{}
	dim, values, ok := rollupPlan(f, by)
	since, until := int64(0), int64(math.MaxInt64)
	if !f.Since.IsZero() {
		since = f.Since.UnixNano()
	}
	if !f.Until.IsZero() {
		until = f.Until.UnixNano()
	}
	lo, hi := ceilTo(since, hourNS), hourOf(until)
	if !ok || lo >= hi {
		return out, s.groupEvents(ctx, tx, f, by, gran, since, until, out)
	}
	if since < lo {
		if err := s.groupEvents(ctx, tx, f, by, gran, since, lo, out); err != nil {
			return nil, err
		}
	}
	if hi < until {
		if err := s.groupEvents(ctx, tx, f, by, gran, hi, until, out); err != nil {
			return nil, err
		}
	}
	r := rollupRead{f: f, by: by, gran: gran, dim: dim, values: values, out: out}
	dlo, dhi := ceilTo(lo, dayNS), dayOf(hi)
	if gran != hourNS && dlo < dhi {
		var daysUntil int64
		if err := tx.QueryRowContext(ctx, "SELECT coalesce((SELECT value FROM meta WHERE name = 'days_until'), 0)").Scan(&daysUntil); err != nil {
			return nil, err
		}
		dhi = min(dhi, daysUntil)
	}
	if gran == hourNS || dlo >= dhi {
		return out, r.read(ctx, tx, "rollups", "hour", lo, hi)
	}
	if err := r.read(ctx, tx, "rollup_days", "day", dlo, dhi); err != nil {
		return nil, err
	}
	if lo < dlo {
		if err := r.read(ctx, tx, "rollups", "hour", lo, dlo); err != nil {
			return nil, err
		}
	}
	if dhi < hi {
		if err := r.read(ctx, tx, "rollups", "hour", dhi, hi); err != nil {
			return nil, err
		}
	}
	return out, tx.Commit()
}

// ceilTo rounds t up to a multiple of unit.
func ceilTo(t, unit int64) int64 {
	if r := t % unit; r != 0 {
		return t - r + unit
	}
	return t
}

// usageTotals sums the usage columns of rollup rows. SQLite's sum() fails
// the query on integer overflow; total() sums in floating point and never
// does, and scanGroups saturates what it reads (see agenttrail.AddSat). An
// upsert that overflows an integer column stores a float, which total()
// reads alike.
const usageTotals = "total(input_tokens), total(output_tokens), total(cache_read_tokens), " +
	"total(cache_write_tokens), total(reasoning_tokens), total(cost_nusd)"

const usageSums = "sum(count), " + usageTotals

// eventSums are usageSums over the events table; the cost is rounded per
// event exactly as the rollups round it.
const eventSums = "count(*), total(input_tokens), total(output_tokens), total(cache_read_tokens), " +
	"total(cache_write_tokens), total(reasoning_tokens), total(CAST(round(coalesce(cost_usd, 0) * 1e9) AS INTEGER))"

// rollupRead is one grouping answered from a rollup table.
type rollupRead struct {
	f      *agenttrail.Filter
	by     agenttrail.Dimension
	gran   int64
	dim    int
	values []string
	out    map[groupKey]*usage
}

func (r *rollupRead) read(ctx context.Context, tx *sql.Tx, table, timeCol string, from, to int64) error {
	w := &where{}
	w.add("dim = ?", r.dim)
	w.add(timeCol+" >= ?", from)
	w.add(timeCol+" < ?", to)
	w.in("org", r.f.Org)
	w.in("project", r.f.Project)
	w.in("key", r.values)
	keyExpr := "''"
	switch r.by {
	case "":
	case agenttrail.DimOrg, agenttrail.DimProject:
		keyExpr = string(r.by)
	default:
		keyExpr = "key"
	}
	return scanGroups(ctx, tx, table, usageSums, keyExpr, bucketExpr(timeCol, r.gran), w, r.out)
}

func (s *Store) groupEvents(ctx context.Context, tx *sql.Tx, f *agenttrail.Filter, by agenttrail.Dimension, gran, since, until int64, out map[groupKey]*usage) error {
	w := filterWhere(f)
	if since > 0 {
		w.add("time >= ?", since)
	}
	if until < math.MaxInt64 {
		w.add("time < ?", until)
	}
	keyExpr := "''"
	if by != "" {
		keyExpr = dimColumn(by)
	}
	return scanGroups(ctx, tx, "events", eventSums, keyExpr, bucketExpr("time", gran), w, out)
}

// bucketExpr is the SQL for the start of the gran-wide bucket of col. A
// rollup's own time column is returned bare, so that GROUP BY follows the
// primary key's order instead of sorting.
func bucketExpr(col string, gran int64) string {
	switch {
	case gran == 0:
		return "0"
	case col == "hour" && gran == hourNS, col == "day" && gran == dayNS:
		return col
	}
	return fmt.Sprintf("%s - %s %% %d", col, col, gran)
}

func scanGroups(ctx context.Context, tx *sql.Tx, table, sums, keyExpr, bucket string, w *where, out map[groupKey]*usage) error {
	query := "SELECT " + bucket + " AS b, " + keyExpr + " AS k, " + sums + " FROM " + table + " WHERE " + w.String() + " GROUP BY b, k"
	rows, err := tx.QueryContext(ctx, query, w.args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var k groupKey
		var u usage
		var in, o, cr, cw, rs, cost float64
		if err := rows.Scan(&k.hour, &k.key, &u.count, &in, &o, &cr, &cw, &rs, &cost); err != nil {
			return err
		}
		u.input, u.output, u.cacheRead, u.cacheWrite, u.reasoning, u.costNUSD =
			agenttrail.Saturate(in), agenttrail.Saturate(o), agenttrail.Saturate(cr), agenttrail.Saturate(cw), agenttrail.Saturate(rs), agenttrail.Saturate(cost)
		if x := out[k]; x != nil {
			x.add(u)
		} else {
			out[k] = &u
		}
	}
	return rows.Err()
}
