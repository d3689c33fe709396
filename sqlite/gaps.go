package sqlite

import (
	"context"
	"time"

	"github.com/agenttrail/agenttrail"
)

// HeartbeatGaps finds heartbeat gaps as agenttrail.HeartbeatScan defines
// them, from the heartbeats and stops in f's range, read in producer and
// time order. interval 0 judges each heartbeat by the interval it states.
func (s *Store) HeartbeatGaps(ctx context.Context, f agenttrail.Filter, interval time.Duration) ([]agenttrail.HeartbeatGap, error) {
	if interval < 0 {
		return nil, agenttrail.Invalid("interval", "must not be negative")
	}
	if err := checkFilter(&f); err != nil {
		return nil, err
	}
	until := f.Until
	if until.IsZero() {
		until = s.now().UTC()
	}
	w := filterWhere(&f)
	w.timeRange(f.Since, until)
	w.add("source = ?", agenttrail.SourceAgent)
	w.add("action IN (?, ?)", agenttrail.ActionHeartbeat, agenttrail.ActionStop)
	rows, err := s.r.QueryContext(ctx, `SELECT org, actor_id, producer_id, time, action, metadata FROM events
		WHERE `+w.String()+` ORDER BY org, actor_id, producer_id, time, seq`, w.args...)
	if err != nil {
		return nil, formatError("heartbeat gaps", err)
	}
	defer rows.Close()
	scan := agenttrail.HeartbeatScan{Until: until, Interval: interval}
	for rows.Next() {
		var (
			b      agenttrail.Beat
			t      int64
			action string
			meta   []byte
		)
		if err := rows.Scan(&b.Org, &b.ActorID, &b.ProducerID, &t, &action, &meta); err != nil {
			return nil, formatError("heartbeat gaps", err)
		}
		b.Time, b.Stop, b.Interval = time.Unix(0, t), action == agenttrail.ActionStop, agenttrail.HeartbeatIntervalOf(meta)
		scan.Add(b)
	}
	if err := rows.Err(); err != nil {
		return nil, formatError("heartbeat gaps", err)
	}
	return scan.Gaps(), nil
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
