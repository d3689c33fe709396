package app

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/ingest"
)

// retention deletes events older than a horizon, once at start and then
// every interval, and records each run as an audit event, through the one
// write path like every other event, so that what the trail forgot is
// itself in the trail.
type retention struct {
	store    agenttrail.Retainer
	writer   *ingest.Pipeline
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

func (r *retention) once(ctx context.Context) error {
	start := r.now()
	cutoff := start.Add(-r.horizon).UTC()
	deleted, err := r.store.DeleteBefore(ctx, cutoff)
	took := r.now().Sub(start)
	e := agenttrail.Event{
		ActorType: agenttrail.ActorSystem, ActorID: "agenttrail-retention", ActorName: "retention",
		Source: agenttrail.SourceAudit, Action: "retention.run", ResourceType: "store",
		Result: agenttrail.ResultSuccess, DurationMS: float64(took.Microseconds()) / 1000,
		Description: fmt.Sprintf("deleted %d events older than %s (retention %s)", deleted, cutoff.Format(time.RFC3339), r.horizon),
	}
	if err != nil {
		e.Result, e.Description = agenttrail.ResultError, fmt.Sprintf("retention failed after deleting %d events: %v", deleted, err)
	}
	e.Metadata, _ = json.Marshal(map[string]any{"retention": map[string]any{
		"cutoff": cutoff.Format(time.RFC3339Nano), "deleted": deleted, "horizon": r.horizon.String()}})
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
