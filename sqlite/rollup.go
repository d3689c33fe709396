package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/agenttrail/agenttrail"
)

// Rollup rows exist for the dimensions below, each under a small stable
// code (stored in the file: never renumber), plus dimTotal, whose one key
// "" counts every event. org and project are columns of every rollup row,
// so by=org, by=project and series without by read the totals.
const (
	dimSource       = 1
	dimActorType    = 2
	dimActorID      = 3
	dimResult       = 4
	dimAction       = 5
	dimResourceType = 6
	dimModel        = 7
	dimTotal        = 8
)

// rolledDims lists the rollup codes, in the order Append writes them.
func rolledDims() [8]int {
	return [8]int{dimSource, dimActorType, dimActorID, dimResult, dimAction, dimResourceType, dimModel, dimTotal}
}

// dimCode returns the rollup code of d, or 0 for org and project, which
// have no rows of their own.
func dimCode(d agenttrail.Dimension) int {
	switch d {
	case agenttrail.DimSource:
		return dimSource
	case agenttrail.DimActorType:
		return dimActorType
	case agenttrail.DimActorID:
		return dimActorID
	case agenttrail.DimResult:
		return dimResult
	case agenttrail.DimAction:
		return dimAction
	case agenttrail.DimResourceType:
		return dimResourceType
	case agenttrail.DimModel:
		return dimModel
	}
	return 0
}

// dimColumn is the events column holding d's value.
func dimColumn(d agenttrail.Dimension) string {
	if d == agenttrail.DimModel {
		return "model"
	}
	return string(d) // the other dimensions are named like their columns
}

const (
	hourNS = int64(time.Hour)
	dayNS  = 24 * hourNS
)

func hourOf(unixNano int64) int64 { return unixNano - unixNano%hourNS }

func dayOf(unixNano int64) int64 { return unixNano - unixNano%dayNS }

// usage is what a rollup row sums. Cost is in nano-dollars so that adding
// a batch and later subtracting deleted events is exact.
type usage struct {
	count, input, output, cacheRead, cacheWrite, reasoning, costNUSD int64
}

// add adds o to u, saturating rather than wrapping around (see
// agenttrail.AddSat).
func (u *usage) add(o usage) {
	u.count = agenttrail.AddSat(u.count, o.count)
	u.input = agenttrail.AddSat(u.input, o.input)
	u.output = agenttrail.AddSat(u.output, o.output)
	u.cacheRead = agenttrail.AddSat(u.cacheRead, o.cacheRead)
	u.cacheWrite = agenttrail.AddSat(u.cacheWrite, o.cacheWrite)
	u.reasoning = agenttrail.AddSat(u.reasoning, o.reasoning)
	u.costNUSD = agenttrail.AddSat(u.costNUSD, o.costNUSD)
}

func (u usage) neg() usage {
	return usage{-u.count, -u.input, -u.output, -u.cacheRead, -u.cacheWrite, -u.reasoning, -u.costNUSD}
}

func nanoUSD(c float64) int64 { return agenttrail.Saturate(math.Round(c * 1e9)) }

func (u usage) totals() agenttrail.Usage {
	return agenttrail.Usage{Count: u.count, InputTokens: u.input, OutputTokens: u.output,
		CacheReadTokens: u.cacheRead, CacheWriteTokens: u.cacheWrite, ReasoningTokens: u.reasoning,
		CostUSD: float64(u.costNUSD) / 1e9}
}

// row is the part of an event the rollups need: its scope, hour, the
// values of the rolled dimensions, and its usage.
type row struct {
	org, project string
	hour         int64
	dims         [9]string // indexed by rollup code; dims[dimTotal] is ""
	use          usage
}

func rowOf(e *agenttrail.Event) row {
	r := row{org: e.Org, project: e.Project, hour: hourOf(e.Time.UnixNano()), use: usage{count: 1}}
	r.dims[dimSource] = e.Source
	r.dims[dimActorType] = string(e.ActorType)
	r.dims[dimActorID] = e.ActorID
	r.dims[dimResult] = string(e.Result)
	r.dims[dimAction] = e.Action
	r.dims[dimResourceType] = e.ResourceType
	if l, ok := e.LLM(); ok {
		r.dims[dimModel] = l.Model
		r.use = usage{1, l.InputTokens, l.OutputTokens, l.CacheReadTokens, l.CacheWriteTokens, l.ReasoningTokens, nanoUSD(l.Cost())}
	}
	return r
}

type rollupKey struct {
	dim          int
	hour         int64
	org, project string
	key          string
}

// rollupDelta accumulates a batch's changes to rollup rows in memory, so a
// transaction writes each distinct row once.
type rollupDelta map[rollupKey]*usage

func (d rollupDelta) add(r *row, sign int64) {
	u := r.use
	if sign < 0 {
		u = u.neg()
	}
	for _, dim := range rolledDims() {
		k := rollupKey{dim, r.hour, r.org, r.project, r.dims[dim]}
		if x := d[k]; x != nil {
			x.add(u)
		} else {
			c := u
			d[k] = &c
		}
	}
}

const (
	sumColumns       = "count, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, cost_nusd"
	rollupColumns    = "dim, hour, org, project, key, " + sumColumns
	rollupDayColumns = "dim, day, org, project, key, " + sumColumns
)

// write adds the deltas to the hourly rollups and, for the hours of days
// already folded into day rows (before s.daysUntil), to the day rollups too;
// then it removes rows whose count fell to zero. One upsert per row (see
// Append on why not multi-row), in key order for locality.
func (d rollupDelta) write(ctx context.Context, s *Store, tx *sql.Tx) error {
	if len(d) == 0 {
		return nil
	}
	if err := d.upsert(ctx, s, tx, upsertSQL, "rollups", "hour"); err != nil {
		return err
	}
	return d.days(s.daysUntil).upsert(ctx, s, tx, upsertDaySQL, "rollup_days", "day")
}

// writeRaw is write for Append, through its writer: an append only adds,
// so no row's count falls to zero.
func (d rollupDelta) writeRaw(w *writer, daysUntil int64) error {
	for _, u := range []struct {
		d  rollupDelta
		st *rawStmt
	}{{d, w.upsert}, {d.days(daysUntil), w.upDays}} {
		for _, k := range u.d.sortedKeys() {
			v := u.d[k]
			u.st.reserve(len(k.org) + len(k.project) + len(k.key))
			u.st.int64(1, int64(k.dim))
			u.st.int64(2, k.hour)
			u.st.text(3, k.org)
			u.st.text(4, k.project)
			u.st.text(5, k.key)
			for i, n := range [...]int64{v.count, v.input, v.output, v.cacheRead, v.cacheWrite, v.reasoning, v.costNUSD} {
				u.st.int64(6+i, n)
			}
			if _, err := u.st.exec(); err != nil {
				return err
			}
		}
	}
	return nil
}

// days returns the deltas of the hours of days before daysUntil (those
// folded into day rows already), summed per day.
func (d rollupDelta) days(daysUntil int64) rollupDelta {
	days := rollupDelta{}
	for k, u := range d {
		if k.hour < daysUntil {
			dk := k
			dk.hour = dayOf(k.hour)
			if x := days[dk]; x != nil {
				x.add(*u)
			} else {
				c := *u
				days[dk] = &c
			}
		}
	}
	return days
}

// sortedKeys returns the keys of d in the order of the rollups' primary key,
// for locality.
func (d rollupDelta) sortedKeys() []rollupKey {
	keys := make([]rollupKey, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b rollupKey) int {
		return cmp.Or(cmp.Compare(a.dim, b.dim), cmp.Compare(a.hour, b.hour), strings.Compare(a.key, b.key),
			strings.Compare(a.org, b.org), strings.Compare(a.project, b.project))
	})
	return keys
}

func (d rollupDelta) upsert(ctx context.Context, s *Store, tx *sql.Tx, query, table, timeCol string) error {
	if len(d) == 0 {
		return nil
	}
	anyNeg := false
	minT, maxT := int64(math.MaxInt64), int64(math.MinInt64)
	for k, u := range d {
		if u.count < 0 {
			anyNeg = true
			minT, maxT = min(minT, k.hour), max(maxT, k.hour)
		}
	}
	st, err := s.stmt(ctx, tx, query)
	if err != nil {
		return err
	}
	for _, k := range d.sortedKeys() {
		u := d[k]
		if _, err := st.ExecContext(ctx, k.dim, k.hour, k.org, k.project, k.key,
			u.count, u.input, u.output, u.cacheRead, u.cacheWrite, u.reasoning, u.costNUSD); err != nil {
			return err
		}
	}
	if anyNeg {
		for _, dim := range rolledDims() {
			if _, err := tx.ExecContext(ctx, "DELETE FROM "+table+" WHERE dim = ? AND "+timeCol+" BETWEEN ? AND ? AND count <= 0",
				dim, minT, maxT); err != nil {
				return err
			}
		}
	}
	return nil
}

const upsertSet = ` ON CONFLICT DO UPDATE SET
		count = count + excluded.count,
		input_tokens = input_tokens + excluded.input_tokens,
		output_tokens = output_tokens + excluded.output_tokens,
		cache_read_tokens = cache_read_tokens + excluded.cache_read_tokens,
		cache_write_tokens = cache_write_tokens + excluded.cache_write_tokens,
		reasoning_tokens = reasoning_tokens + excluded.reasoning_tokens,
		cost_nusd = cost_nusd + excluded.cost_nusd`

const upsertSQL = "INSERT INTO rollups (" + rollupColumns + ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?)" + upsertSet

const upsertDaySQL = "INSERT INTO rollup_days (" + rollupDayColumns + ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?)" + upsertSet
