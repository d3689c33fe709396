package app

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/ingest"
)

// retention deletes events older than a horizon, once at start and then
// every interval, and records each run as an audit event, through the one
// write path like every other event, so that what the trail forgot is
// itself in the trail.
type retention struct {
	store  agenttrail.Retainer
	reader agenttrail.Querier
	writer *ingest.Pipeline
	// required returns the lowest checkpoint of the sinks retention waits
	// for (sink.Set.LowestRequired), ok false when there are none; nil
	// when there are no sinks.
	required func(ctx context.Context) (seq int64, ok bool, err error)
	// held is 1 while a required sink holds retention back, for /metrics.
	held    prometheus.Gauge
	horizon time.Duration // the default; 0 keeps what no rule matches
	// rules, when there are any, decide before horizon: the first that
	// matches an event says how long it is kept.
	rules    []RetentionRule
	interval time.Duration
	logger   *slog.Logger
	now      func() time.Time
}

// run is an actor: it returns when ctx is done.
func (r *retention) run(ctx context.Context) error {
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		if err := r.once(ctx); err != nil && ctx.Err() == nil {
			r.logger.Error("retention run failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// holdFor returns the cutoff lowered, if need be, so that no event a
// required sink has yet to deliver is deleted: the time of the oldest
// event before cutoff whose seq is past the lowest required checkpoint.
// It reads, in time order, only events before cutoff, which are the ones
// a run deletes anyway. held is false when nothing holds it back.
func (r *retention) holdFor(ctx context.Context, cutoff time.Time) (_ time.Time, checkpoint int64, held bool, err error) {
	if r.required == nil {
		return cutoff, 0, false, nil
	}
	cp, ok, err := r.required(ctx)
	if err != nil || !ok {
		return cutoff, 0, false, err
	}
	q := agenttrail.Query{Filter: agenttrail.Filter{Until: cutoff}, Sort: agenttrail.SortTimeAsc, Limit: 1000}
	for {
		p, err := r.reader.Query(ctx, q)
		if err != nil {
			return cutoff, cp, false, err
		}
		for i := range p.Events {
			if p.Events[i].Seq > cp {
				return p.Events[i].Time, cp, true, nil
			}
		}
		if len(p.Events) < q.Limit || p.Next == nil {
			return cutoff, cp, false, nil
		}
		q.After = p.Next
	}
}

func (r *retention) once(ctx context.Context) error {
	if len(r.rules) > 0 {
		return r.onceByRules(ctx)
	}
	start := r.now()
	horizonCutoff := start.Add(-r.horizon).UTC()
	cutoff, cp, held, err := r.holdFor(ctx, horizonCutoff)
	if err != nil {
		return fmt.Errorf("retention: required sinks: %w", err)
	}
	if r.held != nil {
		r.held.Set(map[bool]float64{true: 1, false: 0}[held])
	}
	deleted, err := r.store.DeleteBefore(ctx, cutoff)
	took := r.now().Sub(start)
	e := runEvent(took, fmt.Sprintf("deleted %d events older than %s (retention %s)", deleted, cutoff.Format(time.RFC3339), r.horizon))
	if held {
		e.Description += fmt.Sprintf("; held back from %s: a required sink has delivered only up to seq %d", horizonCutoff.Format(time.RFC3339), cp)
	}
	if err != nil {
		e.Result, e.Description = agenttrail.ResultError, fmt.Sprintf("retention failed after deleting %d events: %v", deleted, err)
	}
	meta := map[string]any{"cutoff": cutoff.Format(time.RFC3339Nano), "deleted": deleted, "horizon": r.horizon.String()}
	if held {
		meta["horizon_cutoff"] = horizonCutoff.Format(time.RFC3339Nano)
	}
	if werr := r.record(ctx, e, meta, held, cp); werr != nil {
		return werr
	}
	if deleted > 0 || err != nil {
		r.logger.Info("retention run", "deleted", deleted, "cutoff", cutoff, "took", took, "err", err)
	}
	return err
}

// runEvent returns the audit event of a run that took took.
func runEvent(took time.Duration, description string) agenttrail.Event {
	return agenttrail.Event{
		ActorType: agenttrail.ActorSystem, ActorID: "agenttrail-retention", ActorName: "retention",
		Source: agenttrail.SourceAudit, Action: "retention.run", ResourceType: "store",
		Result: agenttrail.ResultSuccess, DurationMS: float64(took.Microseconds()) / 1000,
		Description: description,
	}
}

// record writes a run's audit event through the write path, with meta as
// metadata.retention and, when the required sinks held the run back, the
// checkpoint that held it.
func (r *retention) record(ctx context.Context, e agenttrail.Event, meta map[string]any, held bool, checkpoint int64) error {
	if held {
		meta["held_by_required_sinks"] = true
		meta["required_checkpoint"] = checkpoint
	}
	e.Metadata, _ = json.Marshal(map[string]any{"retention": meta})
	res, err := r.writer.Write(ctx, []agenttrail.Event{e}, ingest.Scope{Server: true})
	if err == nil && len(res.Rejected) > 0 {
		err = res.Rejected[0].Err
	}
	if err != nil {
		return fmt.Errorf("record retention run: %w", err)
	}
	return nil
}

// storeRules returns the rules of a run at now for the store: each rule's
// filters with its cutoff, then the default as a rule that matches every
// event (a zero cutoff, keeping them, when there is no default).
func (r *retention) storeRules(now time.Time) []agenttrail.RetentionRule {
	out := make([]agenttrail.RetentionRule, 0, len(r.rules)+1)
	for _, rule := range r.rules {
		out = append(out, agenttrail.RetentionRule{Filter: rule.filter(), Before: now.Add(-rule.Keep).UTC()})
	}
	def := agenttrail.RetentionRule{}
	if r.horizon > 0 {
		def.Before = now.Add(-r.horizon).UTC()
	}
	return append(out, def)
}

// heldByRules reports whether an event past checkpoint cp would go but
// for the required sinks: one that its rule's cutoff passed. It reads,
// per rule, the matching events before the cutoff with seq past cp, which
// are the few the sinks have yet to deliver.
func (r *retention) heldByRules(ctx context.Context, rules []agenttrail.RetentionRule, cp int64) (bool, error) {
	for i, rule := range rules {
		if rule.Before.IsZero() {
			continue
		}
		f := rule.Filter
		f.Until = rule.Before
		q := agenttrail.Query{Filter: f, Sort: agenttrail.SortSeq, Limit: 1000, After: &agenttrail.Position{Seq: cp}}
		for {
			p, err := r.reader.Query(ctx, q)
			if err != nil {
				return false, err
			}
			for j := range p.Events {
				if agenttrail.RetentionRuleOf(rules, &p.Events[j]) == i {
					return true, nil
				}
			}
			if len(p.Events) < q.Limit || p.Next == nil {
				break
			}
			q.After = p.Next
		}
	}
	return false, nil
}

// onceByRules is a run with rules: the store deletes, per event, as the
// first matching rule (or the default) says, and never an event past the
// lowest checkpoint of the required sinks. The audit event says what each
// rule deleted.
func (r *retention) onceByRules(ctx context.Context) error {
	start := r.now()
	rules := r.storeRules(start)
	maxSeq, held := int64(math.MaxInt64), false
	if r.required != nil {
		cp, ok, err := r.required(ctx)
		if err != nil {
			return fmt.Errorf("retention: required sinks: %w", err)
		}
		if ok {
			maxSeq = cp
			if held, err = r.heldByRules(ctx, rules, cp); err != nil {
				return fmt.Errorf("retention: required sinks: %w", err)
			}
		}
	}
	if r.held != nil {
		r.held.Set(map[bool]float64{true: 1, false: 0}[held])
	}
	counts, err := r.store.DeleteByRules(ctx, rules, maxSeq)
	took := r.now().Sub(start)
	var deleted int64
	parts := make([]string, 0, len(counts))
	perRule := make([]map[string]any, 0, len(counts))
	for i, n := range counts {
		deleted += n
		name, keep := "default", r.horizon
		m := map[string]any{"deleted": n}
		if i < len(r.rules) {
			rule := r.rules[i]
			name, keep = fmt.Sprintf("rule %d (%s)", i+1, rule), rule.Keep
			m["rule"] = i + 1
			for k, v := range map[string][]string{"source": rule.Source, "org": rule.Org, "project": rule.Project} {
				if len(v) > 0 {
					m[k] = v
				}
			}
		} else {
			m["rule"] = "default"
		}
		if keep > 0 {
			m["keep"] = keep.String()
			m["cutoff"] = rules[i].Before.Format(time.RFC3339Nano)
			parts = append(parts, fmt.Sprintf("%s: %d older than %s", name, n, rules[i].Before.Format(time.RFC3339)))
		} else {
			parts = append(parts, name+": kept")
		}
		perRule = append(perRule, m)
	}
	e := runEvent(took, fmt.Sprintf("deleted %d events by retention rules; %s", deleted, strings.Join(parts, "; ")))
	if held {
		e.Description += fmt.Sprintf("; held back: a required sink has delivered only up to seq %d", maxSeq)
	}
	if err != nil {
		e.Result, e.Description = agenttrail.ResultError, fmt.Sprintf("retention failed after deleting %d events (%s): %v", deleted, strings.Join(parts, "; "), err)
	}
	if werr := r.record(ctx, e, map[string]any{"deleted": deleted, "rules": perRule}, held, maxSeq); werr != nil {
		return werr
	}
	if deleted > 0 || err != nil {
		r.logger.Info("retention run", "deleted", deleted, "per_rule", counts, "took", took, "err", err)
	}
	return err
}
