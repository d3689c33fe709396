package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/wire"
)

// IntegrityKey returns the verifier key of the server's checkpoint
// signatures (GET /v1/integrity/key), in note format.
func (c *Client) IntegrityKey(ctx context.Context) (string, error) {
	var k wire.IntegrityKey
	if err := c.do(ctx, http.MethodGet, "/v1/integrity/key", nil, "", nil, &k); err != nil {
		return "", fmt.Errorf("integrity key: %w", err)
	}
	return k.Key, nil
}

// Checkpoint returns org's latest signed checkpoint; org "" means the
// token's own.
func (c *Client) Checkpoint(ctx context.Context, org string) (wire.Checkpoint, error) {
	var cp wire.Checkpoint
	if err := c.do(ctx, http.MethodGet, "/v1/integrity/checkpoint", orgQuery(org), "", nil, &cp); err != nil {
		return cp, fmt.Errorf("checkpoint: %w", err)
	}
	return cp, nil
}

// Proof returns the inclusion proof of event id against the latest
// checkpoint of its org.
func (c *Client) Proof(ctx context.Context, id, org string) (wire.InclusionProof, error) {
	var p wire.InclusionProof
	if id == "" {
		return p, agenttrail.Invalid("id", "is required")
	}
	if err := c.do(ctx, http.MethodGet, "/v1/integrity/proof/"+url.PathEscape(id), orgQuery(org), "", nil, &p); err != nil {
		return p, fmt.Errorf("proof: %w", err)
	}
	return p, nil
}

// Consistency returns the proof that org's tree of to leaves extends the
// one of from leaves; to 0 means the latest checkpoint's size.
func (c *Client) Consistency(ctx context.Context, org string, from, to int64) (wire.ConsistencyProof, error) {
	v := url.Values{"from": {strconv.FormatInt(from, 10)}}
	if org != "" {
		v.Set("org", org)
	}
	if to > 0 {
		v.Set("to", strconv.FormatInt(to, 10))
	}
	var p wire.ConsistencyProof
	if err := c.do(ctx, http.MethodGet, "/v1/integrity/consistency", v, "", nil, &p); err != nil {
		return p, fmt.Errorf("consistency proof: %w", err)
	}
	return p, nil
}

// Bundle copies the verifiable bundle of the events f matches (one org)
// from GET /v1/integrity/bundle to w. The Client's timeout does not apply:
// ctx bounds it.
func (c *Client) Bundle(ctx context.Context, f agenttrail.Filter, w io.Writer) error {
	resp, err := c.open(ctx, "/v1/integrity/bundle", f, nil, http.Header{"Accept": {"application/zip, application/problem+json"}})
	if err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("bundle: cut short: %w", err)
	}
	return nil
}
