package server

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/wire"
)

// DefaultHeartbeatInterval is the heartbeat interval /v1/gaps assumes for an
// agent whose heartbeats do not say theirs (metadata.interval_ms, which the
// SDK sets) when the request gives no interval. It is the SDK's default.
const DefaultHeartbeatInterval = 30 * time.Second

// gapsDefaultRange is how far back since defaults to.
const gapsDefaultRange = 24 * time.Hour

// gaps is GET /v1/gaps.
func (s *Server) gaps(r *http.Request) (any, error) {
	v := r.URL.Query()
	f, interval, err := parseGaps(v, s.now())
	if err != nil {
		return nil, err
	}
	f = scope(principalOf(r.Context()), f)
	resp := wire.Gaps{Since: f.Since, Until: f.Until}
	if interval > 0 {
		resp.Heartbeats, err = s.store.HeartbeatGaps(r.Context(), f, interval)
	} else {
		resp.Heartbeats, err = s.heartbeatGapsPerAgent(r.Context(), f)
	}
	if err != nil {
		return nil, err
	}
	if resp.Sequences, err = s.store.SequenceGaps(r.Context(), f); err != nil {
		return nil, err
	}
	if resp.Heartbeats == nil {
		resp.Heartbeats = []agenttrail.HeartbeatGap{}
	}
	if resp.Sequences == nil {
		resp.Sequences = []agenttrail.SequenceGap{}
	}
	return resp, nil
}

// parseGaps reads the parameters of GET /v1/gaps: the filters and an
// optional interval (a duration such as 30s). since defaults to 24 hours
// before until, until to now. interval is 0 when not given.
func parseGaps(v url.Values, now time.Time) (agenttrail.Filter, time.Duration, error) {
	if err := wire.CheckParams(v, "interval"); err != nil {
		return agenttrail.Filter{}, 0, err
	}
	f, err := wire.ParseFilter(v, now)
	if err != nil {
		return agenttrail.Filter{}, 0, err
	}
	var interval time.Duration
	if v.Has("interval") {
		if len(v["interval"]) > 1 {
			return agenttrail.Filter{}, 0, agenttrail.Invalid("interval", "may be given once")
		}
		d, err := wire.ParseDuration(v.Get("interval"))
		if err != nil || d < time.Millisecond {
			return agenttrail.Filter{}, 0, agenttrail.Invalid("interval", "must be a duration of at least 1ms such as 200ms, 30s or 5m, not %q", v.Get("interval"))
		}
		interval = d
	}
	if f.Until.IsZero() {
		f.Until = now.UTC()
	}
	if f.Since.IsZero() {
		f.Since = f.Until.Add(-gapsDefaultRange)
	}
	if !f.Since.Before(f.Until) {
		return agenttrail.Filter{}, 0, agenttrail.Invalid("since", "must be before until")
	}
	return f, interval, nil
}

// agentKey is one agent: gaps are per (org, actor_id).
type agentKey struct{ org, actor string }

// heartbeatGapsPerAgent finds heartbeat gaps with each agent's own interval,
// read from metadata.interval_ms of its newest heartbeats (among the newest
// page in f's range). The store takes one interval per call, so agents are
// grouped by interval; agents that state none get
// DefaultHeartbeatInterval.
func (s *Server) heartbeatGapsPerAgent(ctx context.Context, f agenttrail.Filter) ([]agenttrail.HeartbeatGap, error) {
	intervals, err := s.heartbeatIntervals(ctx, f)
	if err != nil {
		return nil, err
	}
	all, err := s.store.HeartbeatGaps(ctx, f, DefaultHeartbeatInterval)
	if err != nil {
		return nil, err
	}
	var out []agenttrail.HeartbeatGap
	for _, g := range all {
		if iv, ok := intervals[agentKey{g.Org, g.ActorID}]; !ok || iv == DefaultHeartbeatInterval {
			out = append(out, g)
		}
	}
	byInterval := map[time.Duration][]string{}
	for k, iv := range intervals {
		if iv != DefaultHeartbeatInterval {
			byInterval[iv] = append(byInterval[iv], k.actor)
		}
	}
	for iv, actors := range byInterval {
		g := f
		g.ActorID = actors
		gaps, err := s.store.HeartbeatGaps(ctx, g, iv)
		if err != nil {
			return nil, err
		}
		for _, gap := range gaps {
			// The same actor_id may be another org's agent with another
			// interval.
			if intervals[agentKey{gap.Org, gap.ActorID}] == iv {
				out = append(out, gap)
			}
		}
	}
	return out, nil
}

// heartbeatIntervals returns the interval each agent's newest heartbeat in
// f's range states.
func (s *Server) heartbeatIntervals(ctx context.Context, f agenttrail.Filter) (map[agentKey]time.Duration, error) {
	q := agenttrail.Query{Filter: f, Sort: agenttrail.SortTimeDesc, Limit: agenttrail.MaxLimit}
	q.Filter.Source = []string{agenttrail.SourceAgent}
	q.Filter.Action = []string{agenttrail.ActionHeartbeat}
	page, err := s.store.Query(ctx, q)
	if err != nil {
		return nil, err
	}
	out := map[agentKey]time.Duration{}
	for _, e := range page.Events {
		k := agentKey{e.Org, e.ActorID}
		if _, ok := out[k]; ok {
			continue
		}
		var m struct {
			IntervalMS int64 `json:"interval_ms"`
		}
		if json.Unmarshal(e.Metadata, &m) == nil && m.IntervalMS > 0 {
			out[k] = time.Duration(m.IntervalMS) * time.Millisecond
		}
	}
	return out, nil
}
