package app

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
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
	held     prometheus.Gauge
	horizon  time.Duration
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
	e := agenttrail.Event{
		ActorType: agenttrail.ActorSystem, ActorID: "agenttrail-retention", ActorName: "retention",
		Source: agenttrail.SourceAudit, Action: "retention.run", ResourceType: "store",
		Result: agenttrail.ResultSuccess, DurationMS: float64(took.Microseconds()) / 1000,
		Description: fmt.Sprintf("deleted %d events older than %s (retention %s)", deleted, cutoff.Format(time.RFC3339), r.horizon),
	}
	if held {
		e.Description += fmt.Sprintf("; held back from %s: a required sink has delivered only up to seq %d", horizonCutoff.Format(time.RFC3339), cp)
	}
	if err != nil {
		e.Result, e.Description = agenttrail.ResultError, fmt.Sprintf("retention failed after deleting %d events: %v", deleted, err)
	}
	meta := map[string]any{"cutoff": cutoff.Format(time.RFC3339Nano), "deleted": deleted, "horizon": r.horizon.String()}
	if held {
		meta["held_by_required_sinks"] = true
		meta["horizon_cutoff"] = horizonCutoff.Format(time.RFC3339Nano)
		meta["required_checkpoint"] = cp
	}
	e.Metadata, _ = json.Marshal(map[string]any{"retention": meta})
	res, werr := r.writer.Write(ctx, []agenttrail.Event{e}, ingest.Scope{Server: true})
	if werr == nil && len(res.Rejected) > 0 {
		werr = res.Rejected[0].Err
	}
	if werr != nil {
		return fmt.Errorf("record retention run: %w", werr)
	}
	if deleted > 0 || err != nil {
		r.logger.Info("retention run", "deleted", deleted, "cutoff", cutoff, "took", took, "err", err)
	}
	return err
}
