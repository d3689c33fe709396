package postgres

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/jackc/pgx/v5"
)

// A rollup row holds, for one dimension, org, project, UTC hour and key (the
// event's value for the dimension), the count and LLM usage sums of the
// events. Every event adds to one row of each rolled-up dimension.

// rolledUp lists the dimensions that have rollup rows: all but org and
// project, which are columns of every row, so any dimension's rows answer
// them.
func rolledUp() []agenttrail.Dimension {
	return []agenttrail.Dimension{
		agenttrail.DimSource, agenttrail.DimActorType, agenttrail.DimActorID, agenttrail.DimResult,
		agenttrail.DimAction, agenttrail.DimResourceType, agenttrail.DimModel,
	}
}

type rollupKey struct {
	dim     agenttrail.Dimension
	hour    time.Time
	org     string
	project string
	key     string
}

type rollupSums struct {
	count, input, output, cacheRead, cacheWrite, reasoning int64
	cost                                                   float64
}

func (r *rollupSums) add(o rollupSums) {
	r.count += o.count
	r.input += o.input
	r.output += o.output
	r.cacheRead += o.cacheRead
	r.cacheWrite += o.cacheWrite
	r.reasoning += o.reasoning
	r.cost += o.cost
}

func (r rollupSums) bucket(key string) agenttrail.Bucket {
	return agenttrail.Bucket{
		Key: key, Count: r.count, InputTokens: r.input, OutputTokens: r.output,
		CacheReadTokens: r.cacheRead, CacheWriteTokens: r.cacheWrite,
		ReasoningTokens: r.reasoning, CostUSD: r.cost,
	}
}

// sumsOf returns one event's contribution.
func sumsOf(e *agenttrail.Event) rollupSums {
	l, _ := e.LLM()
	return rollupSums{
		count: 1, input: l.InputTokens, output: l.OutputTokens, cacheRead: l.CacheReadTokens,
		cacheWrite: l.CacheWriteTokens, reasoning: l.ReasoningTokens, cost: l.Cost(),
	}
}

// rollupsOf aggregates events into rollup rows, in memory, so a batch costs
// one upsert per distinct row rather than per event.
func rollupsOf(events []*agenttrail.Event) map[rollupKey]*rollupSums {
	m := map[rollupKey]*rollupSums{}
	dims := rolledUp()
	for _, e := range events {
		sums := sumsOf(e)
		hour := e.Time.UTC().Truncate(time.Hour)
		for _, d := range dims {
			k := rollupKey{dim: d, hour: hour, org: e.Org, project: e.Project, key: e.DimensionValue(d)}
			r := m[k]
			if r == nil {
				r = &rollupSums{}
				m[k] = r
			}
			r.add(sums)
		}
	}
	return m
}

// addRollups adds rows to the rollups table with one multi-row upsert.
func addRollups(ctx context.Context, tx pgx.Tx, rows map[rollupKey]*rollupSums) error {
	if len(rows) == 0 {
		return nil
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
		hours                                            = make([]time.Time, n)
		counts, input, output, cacheRead, cacheWrite, rs = make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
		cost                                             = make([]float64, n)
	)
	for i, k := range keys {
		r := rows[k]
		dims[i], hours[i], orgs[i], projects[i], ks[i] = string(k.dim), k.hour, k.org, k.project, k.key
		counts[i], input[i], output[i], cacheRead[i], cacheWrite[i], rs[i], cost[i] =
			r.count, r.input, r.output, r.cacheRead, r.cacheWrite, r.reasoning, r.cost
	}
	_, err := tx.Exec(ctx, `INSERT INTO rollups AS r (dim, hour, org, project, key, count, input_tokens,
			output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, cost_usd)
		SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::text[],
			$6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], $12::float8[])
		ON CONFLICT (dim, hour, org, project, key) DO UPDATE SET
			count = r.count + excluded.count,
			input_tokens = r.input_tokens + excluded.input_tokens,
			output_tokens = r.output_tokens + excluded.output_tokens,
			cache_read_tokens = r.cache_read_tokens + excluded.cache_read_tokens,
			cache_write_tokens = r.cache_write_tokens + excluded.cache_write_tokens,
			reasoning_tokens = r.reasoning_tokens + excluded.reasoning_tokens,
			cost_usd = r.cost_usd + excluded.cost_usd`,
		dims, hours, orgs, projects, ks, counts, input, output, cacheRead, cacheWrite, rs, cost)
	if err != nil {
		return fmt.Errorf("rollups: %w", err)
	}
	return nil
}

func rollupLess(a, b rollupKey) bool {
	if a.dim != b.dim {
		return a.dim < b.dim
	}
	if !a.hour.Equal(b.hour) {
		return a.hour.Before(b.hour)
	}
	if a.org != b.org {
		return a.org < b.org
	}
	if a.project != b.project {
		return a.project < b.project
	}
	return a.key < b.key
}
