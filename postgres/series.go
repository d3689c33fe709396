package postgres

import (
	"context"
	"strings"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/jackc/pgx/v5"
)

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
	unit := a.add(string(iv))
	var arms []string
	if p.rollup {
		key := "''"
		if p.group != "" {
			key = p.group
		}
		arms = rollupArms(p, f, "date_trunc("+unit+", start), "+key+", count, cost_usd", &a)
	}
	key := "''"
	if by != "" {
		key = dimColumn(by)
	}
	for _, rf := range p.raw {
		arms = append(arms, "SELECT date_trunc("+unit+", time), "+key+", count(*), coalesce(sum(cost_usd), 0) FROM events"+
			whereClause(conditions(rf, &a))+" GROUP BY 1, 2")
	}
	sql := "SELECT b, key, " + satSum("count") + ", sum(cost_usd) FROM (" + strings.Join(arms, " UNION ALL ") +
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
