package postgres

import (
	"context"
	"sort"
	"strings"

	"github.com/agenttrail/agenttrail"
	"github.com/jackc/pgx/v5"
)

// The parts of a read plan are arms of one UNION ALL statement, so they see
// one snapshot: a batch committed between two parts can never be half
// counted.

// rollupArms returns one SELECT of cols from each rollup span of p.
func rollupArms(p readPlan, f agenttrail.Filter, cols string, a *args) []string {
	var arms []string
	arm := func(table string, s span) {
		c := []string{"dim = " + a.add(p.dim)}
		c = append(c, timeRange(s.from, s.to, "start", a)...)
		if len(f.Org) > 0 {
			c = append(c, anyText("org", f.Org, a))
		}
		if len(f.Project) > 0 {
			c = append(c, anyText("project", f.Project, a))
		}
		if len(p.keys) > 0 {
			c = append(c, anyText("key", p.keys, a))
		}
		arms = append(arms, "SELECT "+cols+" FROM "+table+whereClause(c))
	}
	for _, s := range p.days {
		arm("rollups_daily", s)
	}
	for _, s := range p.hours {
		arm("rollups_hourly", s)
	}
	return arms
}

// Aggregate returns one bucket per value of by among the events f matches,
// largest count first, ties by key. It reads rollups for the whole days and
// hours f allows and events for the rest.
func (s *Store) Aggregate(ctx context.Context, f agenttrail.Filter, by agenttrail.Dimension) ([]agenttrail.Bucket, error) {
	if err := f.Check(); err != nil {
		return nil, err
	}
	if !by.Valid() {
		return nil, agenttrail.InvalidDimension(by)
	}
	p := planRead(f, by, true)
	var a args
	var arms []string
	if p.rollup {
		arms = rollupArms(p, f, p.group+`, count, input_tokens, output_tokens, cache_read_tokens,
			cache_write_tokens, reasoning_tokens, cost_usd`, &a)
	}
	col := dimColumn(by)
	for _, rf := range p.raw {
		arms = append(arms, "SELECT "+col+", count(*), "+tokenSums("")+
			", coalesce(sum(cost_usd), 0) FROM events"+whereClause(conditions(rf, &a))+" GROUP BY "+col)
	}
	sql := `SELECT key, ` + satSum("count") + ", " + tokenSums("") + `,
		sum(cost_usd) FROM (` + strings.Join(arms, " UNION ALL ") + `) AS u (key, count, input_tokens,
		output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, cost_usd) GROUP BY key`
	rows, err := s.pool.Query(ctx, sql, a...)
	if err != nil {
		return nil, formatError("postgres: aggregate", err)
	}
	buckets, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (agenttrail.Bucket, error) {
		var b agenttrail.Bucket
		err := row.Scan(&b.Key, &b.Count, &b.InputTokens, &b.OutputTokens, &b.CacheReadTokens,
			&b.CacheWriteTokens, &b.ReasoningTokens, &b.CostUSD)
		return b, err
	})
	if err != nil {
		return nil, formatError("postgres: aggregate", err)
	}
	out := buckets[:0]
	for _, b := range buckets {
		if b.Count > 0 {
			out = append(out, b)
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
