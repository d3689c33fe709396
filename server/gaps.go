package server

import (
	"net/http"
	"net/url"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/wire"
)

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
	// interval 0 judges each heartbeat by the interval it states.
	if resp.Heartbeats, err = s.store.HeartbeatGaps(r.Context(), f, interval); err != nil {
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
