// Package client is the Go SDK of agenttrail: Client makes typed calls to the
// HTTP API, and Recorder records events asynchronously (a bounded queue,
// batched sends, retries with backoff, and a durable disk spool while the
// server is unreachable) so that recording never blocks or fails an agent.
//
// It imports only the root package, the standard library, and
// internal/spoollog (the spool's on-disk log, itself standard library only
// and shared with the server's spool), so agents can import it without
// database drivers.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/wire"
)

// maxErrorBody bounds how much of an error response is read.
const maxErrorBody = 64 << 10

// Client calls the agenttrail HTTP API; its requests and answers are the
// types of package wire. It is safe for concurrent use; build it with New.
// The zero value is not usable.
//
// Every method returns an error whose chain holds an *agenttrail.Error when
// the server answered with a non-2xx status (wrapped in a *StatusError that
// keeps the status and Retry-After), or the transport error when it could not
// be reached. IsRetryable and RetryAfter classify both.
type Client struct {
	bases []string     // without trailing slashes; more than one to fail over
	cur   atomic.Int64 // index into bases of the server last answered
	token string
	hc    *http.Client
}

// Option configures a Client.
type Option func(*Client)

// WithToken makes every request carry "Authorization: Bearer token".
func WithToken(token string) Option {
	return func(c *Client) { c.token = token }
}

// WithHTTPClient makes the Client send through hc instead of its default (a
// copy of the default transport, with a 30 s timeout a request).
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			c.hc = hc
		}
	}
}

// New returns a Client for the server at baseURL, e.g.
// "http://127.0.0.1:8080". It does not contact the server; a malformed
// baseURL surfaces as an error from the first call.
//
// baseURL may name several servers, comma-separated (the ingest nodes of a
// cluster): a request that cannot reach one, or that it answers 502, 503
// or 504, goes to the next, and the Client stays with the one that
// answered. A request whose body cannot be read again (IngestNDJSON) is
// not sent twice.
func New(baseURL string, opts ...Option) *Client {
	c := &Client{
		hc: &http.Client{Timeout: 30 * time.Second, Transport: newTransport()},
	}
	for _, b := range strings.Split(baseURL, ",") {
		if b = strings.TrimRight(strings.TrimSpace(b), "/"); b != "" {
			c.bases = append(c.bases, b)
		}
	}
	if len(c.bases) == 0 {
		c.bases = []string{""}
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// maxIdlePerHost is how many kept-alive connections a Client keeps to its
// server. The default transport keeps 2: an LLM proxy with more calls in
// flight than that (each reserving and settling a budget while its
// recorder sends events) would open and close a connection for most budget
// checks, a TCP handshake on the call's path.
const maxIdlePerHost = 64

// newTransport returns a copy of the default transport, so that a Client's
// idle connections are its own to close.
func newTransport() http.RoundTripper {
	if t, ok := http.DefaultTransport.(*http.Transport); ok {
		t = t.Clone()
		t.MaxIdleConnsPerHost = maxIdlePerHost
		return t
	}
	return http.DefaultTransport
}

// CloseIdleConnections closes the keep-alive connections the Client is not
// using. The Client stays usable.
func (c *Client) CloseIdleConnections() { c.hc.CloseIdleConnections() }

// Ingest sends events as one JSON array to POST /v1/events. The server answers
// only once the accepted events are durable; valid events are stored even
// when others are rejected. Events keep the ids they carry, so resending a
// batch after a retryable error stores nothing twice; events without an id get
// one from the server, so callers that retry should set ids first.
func (c *Client) Ingest(ctx context.Context, events []agenttrail.Event) (wire.IngestResult, error) {
	body, err := encodeBatch(nil, events)
	if err != nil {
		return wire.IngestResult{}, fmt.Errorf("ingest: %w", err)
	}
	return c.ingestBody(ctx, "application/json", bytes.NewReader(body))
}

// IngestNDJSON streams newline-delimited JSON events from r to POST /v1/events.
// It does not retry: r is consumed.
func (c *Client) IngestNDJSON(ctx context.Context, r io.Reader) (wire.IngestResult, error) {
	return c.ingestBody(ctx, "application/x-ndjson", r)
}

func (c *Client) ingestBody(ctx context.Context, contentType string, body io.Reader) (wire.IngestResult, error) {
	var res wire.IngestResult
	if err := c.do(ctx, http.MethodPost, "/v1/events", nil, contentType, body, &res); err != nil {
		return wire.IngestResult{}, fmt.Errorf("ingest: %w", err)
	}
	return res, nil
}

// QueryOptions are the paging parameters of GET /v1/events. Zero values leave
// the server's defaults: Sort "-time", Limit 50. Cursor is a
// wire.Page.NextCursor of an earlier call with the same filter and sort.
type QueryOptions struct {
	Sort   agenttrail.Sort
	Limit  int
	Cursor string
}

// Query returns one page of the events f matches.
func (c *Client) Query(ctx context.Context, f agenttrail.Filter, o QueryOptions) (wire.Page, error) {
	v := wire.EncodeFilter(f)
	if o.Sort != "" {
		v.Set("sort", string(o.Sort))
	}
	if o.Limit != 0 {
		v.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.Cursor != "" {
		v.Set("cursor", o.Cursor)
	}
	var p wire.Page
	if err := c.do(ctx, http.MethodGet, "/v1/events", v, "", nil, &p); err != nil {
		return wire.Page{}, fmt.Errorf("query: %w", err)
	}
	return p, nil
}

// Get returns the event with the given id; an ENOTFOUND error when there is
// none the caller may see.
func (c *Client) Get(ctx context.Context, id string) (agenttrail.Event, error) {
	if id == "" {
		return agenttrail.Event{}, agenttrail.Invalid("id", "is required")
	}
	var e agenttrail.Event
	if err := c.do(ctx, http.MethodGet, "/v1/events/"+url.PathEscape(id), nil, "", nil, &e); err != nil {
		return agenttrail.Event{}, fmt.Errorf("get event: %w", err)
	}
	return e, nil
}

// Aggregate groups the events f matches by one dimension, largest count
// first, with the LLM token and cost sums of each group.
func (c *Client) Aggregate(ctx context.Context, f agenttrail.Filter, by agenttrail.Dimension) ([]agenttrail.Bucket, error) {
	v := wire.EncodeFilter(f)
	v.Set("by", string(by))
	var res wire.Aggregate
	if err := c.do(ctx, http.MethodGet, "/v1/aggregate", v, "", nil, &res); err != nil {
		return nil, fmt.Errorf("aggregate: %w", err)
	}
	return res.Buckets, nil
}

// Series counts the events f matches per UTC interval, empty buckets
// included, oldest first; when by is set, each bucket also counts per key of
// that dimension. Without f.Since and f.Until the server picks a range.
func (c *Client) Series(ctx context.Context, f agenttrail.Filter, iv agenttrail.Interval, by agenttrail.Dimension) ([]agenttrail.TimeBucket, error) {
	v := wire.EncodeFilter(f)
	v.Set("interval", string(iv))
	if by != "" {
		v.Set("by", string(by))
	}
	var res wire.Timeseries
	if err := c.do(ctx, http.MethodGet, "/v1/timeseries", v, "", nil, &res); err != nil {
		return nil, fmt.Errorf("timeseries: %w", err)
	}
	return res.Buckets, nil
}

// Ready returns nil when GET /readyz answers 2xx: the server can store events.
func (c *Client) Ready(ctx context.Context) error {
	if err := c.do(ctx, http.MethodGet, "/readyz", nil, "", nil, nil); err != nil {
		return fmt.Errorf("ready: %w", err)
	}
	return nil
}

// do sends one request and decodes a 2xx JSON answer into out (unless nil).
// Other answers become a *StatusError.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, contentType string, body io.Reader, out any) error {
	start := c.cur.Load()
	n := int64(len(c.bases))
	for i := int64(0); ; i++ {
		k := (start + i) % n
		err := c.doAt(ctx, c.bases[k], method, path, query, contentType, body, out)
		if err == nil || i+1 >= n || ctx.Err() != nil || !failsOver(err) || !rewind(body) {
			if err == nil && k != start {
				c.cur.Store(k)
			}
			return err
		}
	}
}

// base is the server the Client sends to now.
func (c *Client) base() string { return c.bases[c.cur.Load()%int64(len(c.bases))] }

// failsOver reports whether another server may take a request that failed
// with err: this one could not be reached, or answered that it cannot
// serve it now.
func failsOver(err error) bool {
	var se *StatusError
	if errors.As(err, &se) {
		switch se.StatusCode {
		case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true
		}
		return false
	}
	var de *decodeError
	return !errors.As(err, &de)
}

// rewind makes body readable from its start again, and reports whether it
// could.
func rewind(body io.Reader) bool {
	if body == nil {
		return true
	}
	s, ok := body.(io.Seeker)
	if !ok {
		return false
	}
	_, err := s.Seek(0, io.SeekStart)
	return err == nil
}

// doAt is do against one server.
func (c *Client) doAt(ctx context.Context, base, method, path string, query url.Values, contentType string, body io.Reader, out any) error {
	u := base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer func() {
		// Drain a little so the connection can be reused.
		_, _ = io.CopyN(io.Discard, resp.Body, maxErrorBody)
		resp.Body.Close()
	}()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return responseError(resp)
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return &decodeError{err: err}
	}
	return nil
}

// decodeError is a 2xx answer whose body did not decode: a broken connection
// (retryable) or a body that is not what the API promises (not retryable).
type decodeError struct{ err error }

func (e *decodeError) Error() string { return "decode response: " + e.err.Error() }
func (e *decodeError) Unwrap() error { return e.err }
