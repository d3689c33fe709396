package sqlite

import (
	"context"
	"math"
	"time"

	"github.com/agenttrail/agenttrail"
)

// HeartbeatGaps finds, per (org, actor_id), consecutive heartbeats within
// f's range more than 1.5 intervals apart, and an open gap when the last
// heartbeat is that old at f.Until (now when f.Until is zero). Missed is the
// number of whole intervals between the two heartbeats, rounded, minus the
// one that ended the gap. Window functions keep the scan in SQLite.
func (s *Store) HeartbeatGaps(ctx context.Context, f agenttrail.Filter, interval time.Duration) ([]agenttrail.HeartbeatGap, error) {
	if interval <= 0 {
		return nil, agenttrail.Invalid("interval", "must be positive")
	}
	if err := checkFilter(&f); err != nil {
		return nil, err
	}
	until := f.Until
	if until.IsZero() {
		until = s.now().UTC()
	}
	limit := int64(interval) * 3 / 2
	w := filterWhere(&f)
	w.timeRange(f.Since, until)
	w.add("source = ?", agenttrail.SourceAgent)
	w.add("action = ?", agenttrail.ActionHeartbeat)
	args := append([]any{}, w.args...)
	args = append(args, limit, until.UnixNano(), limit)
	query := `SELECT org, actor_id, producer_id, prev, time, back = 1 FROM (
		SELECT org, actor_id, producer_id, time,
			lag(time) OVER win AS prev,
			row_number() OVER (PARTITION BY org, actor_id ORDER BY time DESC, seq DESC) AS back
		FROM events WHERE ` + w.String() + `
		WINDOW win AS (PARTITION BY org, actor_id ORDER BY time, seq)
	) WHERE (prev IS NOT NULL AND time - prev > ?) OR (back = 1 AND ? - time > ?)
	ORDER BY org, actor_id, time`
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, formatError("heartbeat gaps", err)
	}
	defer rows.Close()
	var out []agenttrail.HeartbeatGap
	for rows.Next() {
		var (
			g    agenttrail.HeartbeatGap
			prev *int64
			t    int64
			last bool
		)
		if err := rows.Scan(&g.Org, &g.ActorID, &g.ProducerID, &prev, &t, &last); err != nil {
			return nil, formatError("heartbeat gaps", err)
		}
		if prev != nil && t-*prev > limit {
			g.From, g.To = time.Unix(0, *prev).UTC(), time.Unix(0, t).UTC()
			g.Missed = missed(t-*prev, interval)
			out = append(out, g)
		}
		if end := until.UnixNano(); last && end-t > limit {
			// The newest heartbeat, and none since: an open gap.
			out = append(out, agenttrail.HeartbeatGap{Org: g.Org, ActorID: g.ActorID, ProducerID: g.ProducerID,
				From: time.Unix(0, t).UTC(), To: until.UTC(), Missed: missed(end-t, interval), Open: true})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, formatError("heartbeat gaps", err)
	}
	return out, nil
}

func missed(d int64, interval time.Duration) int64 {
	return int64(math.Round(float64(d)/float64(interval))) - 1
}

// SequenceGaps finds, per (org, producer_id), the producer_seq values
// missing between consecutive seqs seen among the events f matches.
func (s *Store) SequenceGaps(ctx context.Context, f agenttrail.Filter) ([]agenttrail.SequenceGap, error) {
	if err := checkFilter(&f); err != nil {
		return nil, err
	}
	w := filterWhere(&f)
	w.timeRange(f.Since, f.Until)
	w.add("producer_id != ''")
	w.add("producer_seq > 0")
	query := `SELECT org, producer_id, prev + 1, producer_seq - 1 FROM (
		SELECT org, producer_id, producer_seq,
			lag(producer_seq) OVER (PARTITION BY org, producer_id ORDER BY producer_seq) AS prev
		FROM events WHERE ` + w.String() + `
	) WHERE producer_seq > prev + 1
	ORDER BY org, producer_id, prev`
	rows, err := s.r.QueryContext(ctx, query, w.args...)
	if err != nil {
		return nil, formatError("sequence gaps", err)
	}
	defer rows.Close()
	var out []agenttrail.SequenceGap
	for rows.Next() {
		var g agenttrail.SequenceGap
		if err := rows.Scan(&g.Org, &g.ProducerID, &g.From, &g.To); err != nil {
			return nil, formatError("sequence gaps", err)
		}
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, formatError("sequence gaps", err)
	}
	return out, nil
}
