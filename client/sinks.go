package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/agenttrail/agenttrail/wire"
)

// Sinks returns the state of the server's push sinks (an admin token of
// all orgs).
func (c *Client) Sinks(ctx context.Context) (wire.Sinks, error) {
	var s wire.Sinks
	if err := c.do(ctx, http.MethodGet, "/v1/sinks", nil, "", nil, &s); err != nil {
		return wire.Sinks{}, fmt.Errorf("sinks: %w", err)
	}
	return s, nil
}

// ReplaySink moves the checkpoint of the sink named name back, so that
// what req names is delivered again, and returns the new checkpoint.
func (c *Client) ReplaySink(ctx context.Context, name string, req wire.SinkReplay) (int64, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return 0, err
	}
	var out wire.SinkReplayResult
	if err := c.do(ctx, http.MethodPost, "/v1/sinks/"+url.PathEscape(name)+"/replay", nil, "application/json", bytes.NewReader(body), &out); err != nil {
		return 0, fmt.Errorf("sinks replay: %w", err)
	}
	return out.Checkpoint, nil
}

// DeadLetters returns up to limit dead letters of the sink named name
// after the one with ID after.
func (c *Client) DeadLetters(ctx context.Context, name string, after int64, limit int) ([]wire.DeadLetter, error) {
	v := url.Values{"after": {strconv.FormatInt(after, 10)}, "limit": {strconv.Itoa(limit)}}
	var out wire.DeadLetters
	if err := c.do(ctx, http.MethodGet, "/v1/sinks/"+url.PathEscape(name)+"/dead-letters", v, "", nil, &out); err != nil {
		return nil, fmt.Errorf("sinks dead-letters: %w", err)
	}
	return out.DeadLetters, nil
}

// RetryDeadLetters asks the sink named name to resend its dead letters.
func (c *Client) RetryDeadLetters(ctx context.Context, name string) error {
	if err := c.do(ctx, http.MethodPost, "/v1/sinks/"+url.PathEscape(name)+"/dead-letters/retry", nil, "application/json", nil, nil); err != nil {
		return fmt.Errorf("sinks dead-letters --retry: %w", err)
	}
	return nil
}
