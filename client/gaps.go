package client

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/agenttrail/agenttrail"
)

// Gaps is the answer of GET /v1/gaps: agents whose heartbeats stopped or
// skipped intervals, and producers whose producer_seq has holes, within
// [Since, Until).
type Gaps struct {
	Since      time.Time                 `json:"since"`
	Until      time.Time                 `json:"until"`
	Heartbeats []agenttrail.HeartbeatGap `json:"heartbeats"`
	Sequences  []agenttrail.SequenceGap  `json:"sequences"`
}

// Gaps asks the server for the heartbeat and sequence gaps of the events f
// matches. A zero f.Since means 24 hours before f.Until, a zero f.Until now.
// interval is the heartbeat interval to judge every agent by; 0 lets the
// server use each agent's own (the interval its heartbeats state).
func (c *Client) Gaps(ctx context.Context, f agenttrail.Filter, interval time.Duration) (Gaps, error) {
	v := f.Values()
	if interval > 0 {
		v.Set("interval", interval.String())
	}
	var g Gaps
	if err := c.do(ctx, http.MethodGet, "/v1/gaps", v, "", nil, &g); err != nil {
		return Gaps{}, fmt.Errorf("gaps: %w", err)
	}
	return g, nil
}
