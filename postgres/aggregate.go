package postgres

import (
	"context"
	"sort"
	"strings"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/jackc/pgx/v5"
)

// The parts of a read plan are arms of one UNION ALL statement, so they see
// one snapshot: a batch committed between two parts can never be half
// counted.

// rollupConditions returns the conditions on rollups that select p's rows.
func rollupConditions(p readPlan, f agenttrail.Filter, a *args) []string {
	c := []string{"dim = " + a.add(string(p.dim))}
	c = append(c, timeRange(p.from, p.to, "hour", a)...)
	if len(f.Org) > 0 {
		c = append(c, anyText("org", f.Org, a))
	}
	if len(f.Project) > 0 {
		c = append(c, anyText("project", f.Project, a))
	}
	if len(p.keys) > 0 {
		c = append(c, anyText("key", p.keys, a))
	}
	return c
}

// Aggregate returns one bucket per value of by among the events f matches,
// largest count first, ties by key. It reads rollups for the whole hours f
// allows and events for the rest.
func (s *Store) Aggregate(ctx context.Context, f agenttrail.Filter, by agenttrail.Dimension) ([]agenttrail.Bucket, error) {
	if !by.Valid() {
		return nil, agenttrail.Invalid("by", "must be one of source, actor_type, actor_id, result, action, resource_type, org, project, model, not %q", by)
	}
	p := planRead(f, by)
	var a args
	var arms []string
	if p.rollup {
		arms = append(arms, "SELECT "+p.group+`, count, input_tokens, output_tokens, cache_read_tokens,
			cache_write_tokens, reasoning_tokens, cost_usd FROM rollups`+whereClause(rollupConditions(p, f, &a)))
	}
	col := dimColumn(by)
	for _, rf := range p.raw {
		arms = append(arms, "SELECT "+col+` AS key, count(*), sum(input_tokens)::bigint, sum(output_tokens)::bigint,
			sum(cache_read_tokens)::bigint, sum(cache_write_tokens)::bigint, sum(reasoning_tokens)::bigint,
			coalesce(sum(cost_usd), 0) FROM events`+whereClause(conditions(rf, &a))+" GROUP BY "+col)
	}
	sql := `SELECT key, sum(count)::bigint, sum(input_tokens)::bigint, sum(output_tokens)::bigint,
		sum(cache_read_tokens)::bigint, sum(cache_write_tokens)::bigint, sum(reasoning_tokens)::bigint,
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
		if b.Count > 0 { // retention may leave nothing of a key
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

// Series returns one bucket per interval from iv.Truncate(f.Since) up to
// f.Until, empty ones included, with counts per key of by when by is set.
// Buckets are UTC; date_trunc('week') starts ISO weeks on Monday.
func (s *Store) Series(ctx context.Context, f agenttrail.Filter, iv agenttrail.Interval, by agenttrail.Dimension) ([]agenttrail.TimeBucket, error) {
	switch iv {
	case agenttrail.Hour, agenttrail.Day, agenttrail.Week:
	default:
		return nil, agenttrail.Invalid("interval", "must be hour, day or week, not %q", iv)
	}
	if by != "" && !by.Valid() {
		return nil, agenttrail.Invalid("by", "must be one of source, actor_type, actor_id, result, action, resource_type, org, project, model, not %q", by)
	}
	if f.Since.IsZero() || f.Until.IsZero() {
		return nil, agenttrail.Invalid("since", "a series needs both since and until")
	}
	var out []agenttrail.TimeBucket
	index := map[int64]int{}
	for t := iv.Truncate(f.Since); t.Before(f.Until); t = iv.Next(t) {
		if len(out) >= agenttrail.MaxBuckets {
			return nil, agenttrail.Invalid("since", "the range holds more than %d %s buckets", agenttrail.MaxBuckets, iv)
		}
		index[t.Unix()] = len(out)
		b := agenttrail.TimeBucket{Start: t}
		if by != "" {
			b.By = map[string]int64{}
		}
		out = append(out, b)
	}
	if !f.Since.Before(f.Until) {
		return out, nil // nothing matches, but the bucket since falls in is there
	}

	p := planRead(f, by)
	var a args
	unit := a.add(string(iv))
	var arms []string
	if p.rollup {
		key := "''"
		if by != "" {
			key = p.group
		}
		arms = append(arms, "SELECT date_trunc("+unit+", hour), "+key+", count, cost_usd FROM rollups"+
			whereClause(rollupConditions(p, f, &a)))
	}
	key := "''"
	if by != "" {
		key = dimColumn(by)
	}
	for _, rf := range p.raw {
		arms = append(arms, "SELECT date_trunc("+unit+", time), "+key+", count(*), coalesce(sum(cost_usd), 0) FROM events"+
			whereClause(conditions(rf, &a))+" GROUP BY 1, 2")
	}
	sql := "SELECT b, key, sum(count)::bigint, sum(cost_usd) FROM (" + strings.Join(arms, " UNION ALL ") +
		") AS u (b, key, count, cost_usd) GROUP BY b, key"
	rows, err := s.pool.Query(ctx, sql, a...)
	if err != nil {
		return nil, formatError("postgres: series", err)
	}
	var (
		start time.Time
		k     string
		count int64
		cost  float64
	)
	_, err = pgx.ForEachRow(rows, []any{&start, &k, &count, &cost}, func() error {
		i, ok := index[start.Unix()]
		if !ok || count == 0 {
			return nil
		}
		out[i].Count += count
		out[i].CostUSD += cost
		if by != "" {
			out[i].By[k] += count
		}
		return nil
	})
	if err != nil {
		return nil, formatError("postgres: series", err)
	}
	return out, nil
}
