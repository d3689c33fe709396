package postgres

import (
	"sort"
	"strings"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/jackc/pgx/v5"
)

// A rollup row holds, for one dimension, org, project, bucket start and key
// (the events' value for the dimension), the count and LLM usage sums of
// the events. Rows exist per UTC hour (rollups_hourly) and per UTC day
// (rollups_daily, the sums of the day's hours), so a 30-day aggregate reads
// 30 rows a key instead of 720. Every event adds to one row of each
// rolled-up dimension, and to one row of dimTotal.

// dimTotal names the rows that count every event under the key "": series
// without a dimension, and by org or project, read these.
const dimTotal = "all"

// rolledUp lists the dimensions that have rollup rows of their own: all but
// org and project, which are columns of every row, and trace_id and
// session_id, which have a value per task and are grouped from the events.
func rolledUp() []agenttrail.Dimension {
	return []agenttrail.Dimension{
		agenttrail.DimSource, agenttrail.DimActorType, agenttrail.DimActorID, agenttrail.DimResult,
		agenttrail.DimAction, agenttrail.DimResourceType, agenttrail.DimModel,
	}
}

type rollupKey struct {
	dim     string
	start   int64 // Unix seconds of the bucket start
	org     string
	project string
	key     string
}

type rollupSums struct {
	count, input, output, cacheRead, cacheWrite, reasoning int64
	cost                                                   float64
}

// add adds o to r, saturating rather than wrapping around (see
// agenttrail.AddSat).
func (r *rollupSums) add(o rollupSums) {
	r.count = agenttrail.AddSat(r.count, o.count)
	r.input = agenttrail.AddSat(r.input, o.input)
	r.output = agenttrail.AddSat(r.output, o.output)
	r.cacheRead = agenttrail.AddSat(r.cacheRead, o.cacheRead)
	r.cacheWrite = agenttrail.AddSat(r.cacheWrite, o.cacheWrite)
	r.reasoning = agenttrail.AddSat(r.reasoning, o.reasoning)
	r.cost += o.cost
}

// satSum is the SQL sum of a bigint column, saturated to bigint: a plain
// sum()::bigint fails the query when it overflows, which would make every
// later read of the rows it covers fail (agenttrail.AddSat).
func satSum(col string) string {
	return "least(sum(" + col + "), 9223372036854775807)::bigint"
}

// tokenSums is satSum of the five token counters, prefix naming their
// table ("e." or "").
func tokenSums(prefix string) string {
	cols := []string{"input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens"}
	for i, c := range cols {
		cols[i] = satSum(prefix + c)
	}
	return strings.Join(cols, ", ")
}

// satAdd is the SQL of an upsert adding the new rows' column to the
// stored one, saturated to bigint. The added sums are never negative
// (Validate), so only r's value needs a sign test; bigint arithmetic, where
// a detour through numeric cost the upserts of every batch about a third of
// their CPU.
func satAdd(col string) string {
	r, x := "r."+col, "excluded."+col
	return col + " = CASE WHEN " + r + " >= 0 AND " + x + " > 9223372036854775807 - " + r +
		" THEN 9223372036854775807 ELSE " + r + " + " + x + " END"
}

// sumsOf returns one event's contribution.
func sumsOf(e *agenttrail.Event) rollupSums {
	l, _ := e.LLM()
	return rollupSums{
		count: 1, input: l.InputTokens, output: l.OutputTokens, cacheRead: l.CacheReadTokens,
		cacheWrite: l.CacheWriteTokens, reasoning: l.ReasoningTokens, cost: l.Cost(),
	}
}

type rollupRows map[rollupKey]*rollupSums

func (m rollupRows) add(k rollupKey, s rollupSums) {
	r := m[k]
	if r == nil {
		r = &rollupSums{}
		m[k] = r
	}
	r.add(s)
}

// rollupsOf aggregates events into hourly and daily rollup rows, in memory,
// so a batch costs one upsert per distinct row rather than per event.
func rollupsOf(events []*agenttrail.Event) (hourly, daily rollupRows) {
	hourly = rollupRows{}
	dims := rolledUp()
	for _, e := range events {
		sums := sumsOf(e)
		k := rollupKey{dim: dimTotal, start: e.Time.Unix() - mod(e.Time.Unix(), 3600), org: e.Org, project: e.Project}
		hourly.add(k, sums)
		for _, d := range dims {
			k.dim, k.key = string(d), e.DimensionValue(d)
			hourly.add(k, sums)
		}
	}
	daily = rollupRows{}
	for k, s := range hourly {
		k.start -= mod(k.start, 86400)
		daily.add(k, *s)
	}
	return hourly, daily
}

// mod returns a mod b in [0, b), for times before 1970 too.
func mod(a, b int64) int64 { return ((a % b) + b) % b }

// queueRollups queues the one multi-row upsert that adds rows to a rollup
// table.
func queueRollups(b *pgx.Batch, table string, rows rollupRows) {
	if len(rows) == 0 {
		return
	}
	keys := make([]rollupKey, 0, len(rows))
	for k := range rows {
		keys = append(keys, k)
	}
	// A fixed order keeps the row locks of concurrent transactions from
	// deadlocking.
	sort.Slice(keys, func(i, j int) bool { return rollupLess(keys[i], keys[j]) })
	n := len(keys)
	var (
		dims, orgs, projects, ks                         = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		starts                                           = make([]time.Time, n)
		counts, input, output, cacheRead, cacheWrite, rs = make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
		cost                                             = make([]float64, n)
	)
	for i, k := range keys {
		r := rows[k]
		dims[i], starts[i], orgs[i], projects[i], ks[i] = k.dim, time.Unix(k.start, 0).UTC(), k.org, k.project, k.key
		counts[i], input[i], output[i], cacheRead[i], cacheWrite[i], rs[i], cost[i] =
			r.count, r.input, r.output, r.cacheRead, r.cacheWrite, r.reasoning, r.cost
	}
	b.Queue(`INSERT INTO `+table+` AS r (dim, start, org, project, key, count, input_tokens,
			output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, cost_usd)
		SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::text[],
			$6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], $12::float8[])
		ON CONFLICT (dim, start, org, project, key) DO UPDATE SET
			`+satAdd("count")+`, `+satAdd("input_tokens")+`, `+satAdd("output_tokens")+`,
			`+satAdd("cache_read_tokens")+`, `+satAdd("cache_write_tokens")+`, `+satAdd("reasoning_tokens")+`,
			cost_usd = r.cost_usd + excluded.cost_usd`,
		dims, starts, orgs, projects, ks, counts, input, output, cacheRead, cacheWrite, rs, cost)
}

func rollupLess(a, b rollupKey) bool {
	if a.dim != b.dim {
		return a.dim < b.dim
	}
	if a.start != b.start {
		return a.start < b.start
	}
	if a.org != b.org {
		return a.org < b.org
	}
	if a.project != b.project {
		return a.project < b.project
	}
	return a.key < b.key
}
