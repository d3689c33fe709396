package postgres

import (
	"context"
	"strings"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/jackc/pgx/v5"
)

// usageCols are the usage columns a series sums, as the rollups name them.
const usageCols = "input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, cost_usd"

// Series returns one bucket per interval from iv.Truncate(f.Since) up to
// f.Until, empty ones included, with counts per key of by when by is set.
// Buckets are UTC (sessions run in UTC); date_trunc('week') starts ISO
// weeks on Monday. Hourly series read hourly rollups; daily and weekly ones
// read daily rollups for whole days.
func (s *Store) Series(ctx context.Context, f agenttrail.Filter, iv agenttrail.Interval, by agenttrail.Dimension) ([]agenttrail.TimeBucket, error) {
	if err := f.Check(); err != nil {
		return nil, err
	}
	out, err := agenttrail.EmptySeries(f, iv, by)
	if err != nil {
		return nil, err
	}
	index := make(map[int64]int, len(out))
	for i, b := range out {
		index[b.Start.Unix()] = i
	}
	if !f.Since.Before(f.Until) {
		return out, nil // nothing matches, but the bucket since falls in is there
	}

	p := planRead(f, by, iv != agenttrail.Hour)
	var a args
	// The unit is a parameter only where a statement uses it: an unused
	// one has no type, which PostgreSQL refuses.
	unit := ""
	unitArg := func() string {
		if unit == "" {
			unit = a.add(string(iv))
		}
		return unit
	}
	var arms []string
	if p.rollup {
		key := "''"
		if p.group != "" {
			key = p.group
		}
		bucket := "start" // hourly rows start on the hour
		if iv != agenttrail.Hour {
			bucket = "date_trunc(" + unitArg() + ", start)"
		}
		arms = rollupArms(p, f, bucket+", "+key+", count, "+usageCols, &a)
	}
	key := "''"
	if by != "" {
		key = dimColumn(by)
	}
	for _, rf := range p.raw {
		arms = append(arms, "SELECT date_trunc("+unitArg()+", time), "+key+", count(*), "+tokenSums("")+", coalesce(sum(cost_usd), 0) FROM events"+
			whereClause(conditions(rf, &a))+" GROUP BY 1, 2")
	}
	sql := "SELECT b, key, " + satSum("count") + ", " + tokenSums("") + ", sum(cost_usd) FROM (" + strings.Join(arms, " UNION ALL ") +
		") AS u (b, key, count, " + usageCols + ") GROUP BY b, key"
	rows, err := s.pool.Query(ctx, sql, a...)
	if err != nil {
		return nil, formatError("postgres: series", err)
	}
	var (
		start time.Time
		k     string
		u     agenttrail.Usage // the sums of one row
	)
	_, err = pgx.ForEachRow(rows, []any{&start, &k, &u.Count, &u.InputTokens, &u.OutputTokens,
		&u.CacheReadTokens, &u.CacheWriteTokens, &u.ReasoningTokens, &u.CostUSD}, func() error {
		i, ok := index[start.Unix()]
		if !ok || u.Count == 0 {
			return nil
		}
		out[i].Add(u)
		if by != "" {
			out[i].By[k] += u.Count
		}
		return nil
	})
	if err != nil {
		return nil, formatError("postgres: series", err)
	}
	return out, nil
}
