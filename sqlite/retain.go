package sqlite

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/agenttrail/agenttrail"
)

// DeleteBefore deletes the events with time before t, oldest first, in
// transactions of at most s.deleteChunk events, each of which subtracts the
// deleted events from the rollups (exactly: counts and nano-dollar costs
// are integers) and drops rollup rows that fall to zero. Appends run
// between chunks, so retention never holds the writer for long.
func (s *Store) DeleteBefore(ctx context.Context, t time.Time) (int64, error) {
	counts := []int64{0}
	err := s.deleteAll(ctx, "time < ?", []any{t.UnixNano()}, "0", nil, counts)
	if counts[0] > 0 {
		s.logger.Info("deleted old events", "before", t, "events", counts[0])
	}
	return counts[0], err
}

// DeleteByRules deletes what rules say, like DeleteBefore: oldest first, in
// chunks that each subtract their events from the rollups. One statement
// selects, per event, the first rule that matches it (a CASE over the
// rules' filters) and deletes the event when its time is before that
// rule's cutoff.
func (s *Store) DeleteByRules(ctx context.Context, rules []agenttrail.RetentionRule, maxSeq int64) ([]int64, error) {
	counts := make([]int64, len(rules))
	if err := agenttrail.CheckRetentionRules(rules); err != nil {
		return counts, err
	}
	var latest time.Time // no event at or after the latest cutoff goes
	var sel, rule where
	var when, which []string
	for i, r := range rules {
		m := filterWhere(&r.Filter)
		which = append(which, "WHEN "+m.String()+" THEN "+strconv.Itoa(i))
		rule.args = append(rule.args, m.args...)
		if r.Before.IsZero() {
			when = append(when, "WHEN "+m.String()+" THEN 0")
			sel.args = append(sel.args, m.args...)
			continue
		}
		when = append(when, "WHEN "+m.String()+" THEN time < ?")
		sel.args = append(sel.args, m.args...)
		sel.args = append(sel.args, r.Before.UnixNano())
		if r.Before.After(latest) {
			latest = r.Before
		}
	}
	if latest.IsZero() {
		return counts, nil
	}
	cond := "seq <= ? AND time < ? AND CASE " + strings.Join(when, " ") + " ELSE 0 END"
	condArgs := append([]any{maxSeq, latest.UnixNano()}, sel.args...)
	err := s.deleteAll(ctx, cond, condArgs, "CASE "+strings.Join(which, " ")+" ELSE -1 END", rule.args, counts)
	var total int64
	for _, n := range counts {
		total += n
	}
	if total > 0 {
		s.logger.Info("deleted old events by retention rules", "events", total, "per_rule", counts)
	}
	return counts, err
}

// deleteAll deletes the events cond selects, in chunks, adding to
// counts[i] the number deleted for which the expression rule (an index
// into counts) is i.
func (s *Store) deleteAll(ctx context.Context, cond string, condArgs []any, rule string, ruleArgs []any, counts []int64) error {
	for {
		n, err := s.deleteChunkWhere(ctx, cond, condArgs, rule, ruleArgs, counts)
		if err != nil || n < int64(s.deleteChunk) {
			return err
		}
	}
}

func (s *Store) deleteChunkWhere(ctx context.Context, cond string, condArgs []any, rule string, ruleArgs []any, counts []int64) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stmts == nil {
		return 0, agenttrail.Errorf(agenttrail.EUNAVAILABLE, "sqlite: store is closed")
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, formatError("delete: begin", err)
	}
	defer tx.Rollback()
	if _, err := s.readState(ctx, tx); err != nil {
		return 0, formatError("delete: read state", err)
	}
	args := append(append(append([]any{}, condArgs...), s.deleteChunk), ruleArgs...)
	rows, err := tx.QueryContext(ctx, `DELETE FROM events WHERE seq IN (
			SELECT seq FROM events WHERE `+cond+` ORDER BY time LIMIT ?)
		RETURNING org, project, time, source, actor_type, actor_id, result, action, resource_type, model,
			input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens,
			CAST(round(coalesce(cost_usd, 0) * 1e9) AS INTEGER), `+rule, args...)
	if err != nil {
		return 0, formatError("delete", err)
	}
	delta := rollupDelta{}
	chunk := make([]int64, len(counts))
	var n int64
	for rows.Next() {
		var r row
		var tm, i int64
		if err := rows.Scan(&r.org, &r.project, &tm, &r.dims[dimSource], &r.dims[dimActorType], &r.dims[dimActorID],
			&r.dims[dimResult], &r.dims[dimAction], &r.dims[dimResourceType], &r.dims[dimModel],
			&r.use.input, &r.use.output, &r.use.cacheRead, &r.use.cacheWrite, &r.use.reasoning, &r.use.costNUSD, &i); err != nil {
			rows.Close()
			return 0, formatError("delete", err)
		}
		r.hour, r.use.count = hourOf(tm), 1
		delta.add(&r, -1)
		if i >= 0 && i < int64(len(chunk)) {
			chunk[i]++
		}
		n++
	}
	if err := rows.Close(); err != nil {
		return 0, formatError("delete", err)
	}
	if n == 0 {
		return 0, nil
	}
	if err := delta.write(context.WithoutCancel(ctx), s, tx); err != nil {
		return 0, formatError("delete: rollups", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, formatError("delete: commit", err)
	}
	for i, c := range chunk {
		counts[i] += c
	}
	return n, nil
}
