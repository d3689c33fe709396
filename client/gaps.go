package client

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/wire"
)

// Gaps asks the server for the heartbeat and sequence gaps of the events f
// matches. A zero f.Since means 24 hours before f.Until, a zero f.Until now.
// interval is the heartbeat interval to judge every agent by; 0 lets the
// server use each agent's own (the interval its heartbeats state).
func (c *Client) Gaps(ctx context.Context, f agenttrail.Filter, interval time.Duration) (wire.Gaps, error) {
	v := wire.EncodeFilter(f)
	if interval > 0 {
		v.Set("interval", interval.String())
	}
	var g wire.Gaps
	if err := c.do(ctx, http.MethodGet, "/v1/gaps", v, "", nil, &g); err != nil {
		return wire.Gaps{}, fmt.Errorf("gaps: %w", err)
	}
	return g, nil
}
