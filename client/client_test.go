package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/wire"
)

// seen is what a test server saw of one request.
type seen struct {
	method, path, rawPath, contentType, auth string
	query                                    url.Values
	body                                     []byte
}

// answering starts a server that records the request and answers status
// with body.
func answering(t *testing.T, status int, contentType, body string, header http.Header) (*httptest.Server, *seen) {
	t.Helper()
	var s seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.method, s.path, s.rawPath = r.Method, r.URL.Path, r.URL.EscapedPath()
		s.contentType, s.auth = r.Header.Get("Content-Type"), r.Header.Get("Authorization")
		s.query = r.URL.Query()
		s.body, _ = io.ReadAll(r.Body)
		for k, v := range header {
			w.Header()[k] = v
		}
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, &s
}

func TestClientCalls(t *testing.T) {
	ts := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	f := agenttrail.Filter{ActorID: []string{"a1", "a2"}, Source: []string{"shell"}, Since: ts}
	tests := []struct {
		name      string
		answer    string
		call      func(ctx context.Context, c *Client) (any, error)
		want      any
		method    string
		path      string
		query     url.Values
		wantBody  bool
		rawPrefix string
	}{
		{
			name:   "ingest",
			answer: `{"accepted":1,"duplicates":1,"rejected":[{"index":2,"error":"actor_id: is required"}]}`,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.Ingest(ctx, []agenttrail.Event{testEvent(1), testEvent(2), {Action: "x"}})
			},
			want:     wire.IngestResult{Accepted: 1, Duplicates: 1, Rejected: []wire.Rejection{{Index: 2, Error: "actor_id: is required"}}},
			method:   "POST",
			path:     "/v1/events",
			query:    url.Values{},
			wantBody: true,
		},
		{
			name:   "query",
			answer: `{"events":[{"id":"e1","actor_id":"a1","seq":7}],"next_cursor":"c2"}`,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.Query(ctx, f, QueryOptions{Sort: agenttrail.SortSeq, Limit: 10, Cursor: "c1"})
			},
			want:   wire.Page{Events: []agenttrail.Event{{ID: "e1", ActorID: "a1", Seq: 7}}, NextCursor: "c2"},
			method: "GET",
			path:   "/v1/events",
			query: url.Values{"actor_id": {"a1", "a2"}, "source": {"shell"}, "since": {"2026-03-01T12:00:00Z"},
				"sort": {"seq"}, "limit": {"10"}, "cursor": {"c1"}},
		},
		{
			name:   "query last page",
			answer: `{"events":[],"next_cursor":null}`,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.Query(ctx, agenttrail.Filter{}, QueryOptions{})
			},
			want:   wire.Page{Events: []agenttrail.Event{}},
			method: "GET",
			path:   "/v1/events",
			query:  url.Values{},
		},
		{
			name:   "get escapes the id",
			answer: `{"id":"a/b c","action":"x"}`,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.Get(ctx, "a/b c")
			},
			want:      agenttrail.Event{ID: "a/b c", Action: "x"},
			method:    "GET",
			path:      "/v1/events/a/b c",
			query:     url.Values{},
			rawPrefix: "/v1/events/a%2Fb%20c",
		},
		{
			name:   "aggregate",
			answer: `{"by":"source","buckets":[{"key":"shell","count":3,"input_tokens":5,"cost_usd":0.5}]}`,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.Aggregate(ctx, f, agenttrail.DimSource)
			},
			want:   []agenttrail.Bucket{{Key: "shell", Usage: agenttrail.Usage{Count: 3, InputTokens: 5, CostUSD: 0.5}}},
			method: "GET",
			path:   "/v1/aggregate",
			query:  url.Values{"actor_id": {"a1", "a2"}, "source": {"shell"}, "since": {"2026-03-01T12:00:00Z"}, "by": {"source"}},
		},
		{
			name:   "timeseries",
			answer: `{"interval":"hour","buckets":[{"start":"2026-03-01T12:00:00Z","count":2,"by":{"success":2}}]}`,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.Series(ctx, agenttrail.Filter{}, agenttrail.Hour, agenttrail.DimResult)
			},
			want:   []agenttrail.TimeBucket{{Start: ts, Usage: agenttrail.Usage{Count: 2}, By: map[string]int64{"success": 2}}},
			method: "GET",
			path:   "/v1/timeseries",
			query:  url.Values{"interval": {"hour"}, "by": {"result"}},
		},
		{
			name:   "ready",
			answer: `{"status":"ok"}`,
			call: func(ctx context.Context, c *Client) (any, error) {
				return nil, c.Ready(ctx)
			},
			method: "GET",
			path:   "/readyz",
			query:  url.Values{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, s := answering(t, 200, "application/json", tt.answer, nil)
			c := New(srv.URL+"/", WithToken("tok"))
			defer c.CloseIdleConnections()
			got, err := tt.call(context.Background(), c)
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s = %#v, want %#v", tt.name, got, tt.want)
			}
			if s.method != tt.method || s.path != tt.path {
				t.Errorf("request = %s %s, want %s %s", s.method, s.path, tt.method, tt.path)
			}
			if tt.rawPrefix != "" && s.rawPath != tt.rawPrefix {
				t.Errorf("escaped path = %q, want %q", s.rawPath, tt.rawPrefix)
			}
			if !reflect.DeepEqual(s.query, tt.query) {
				t.Errorf("query = %v, want %v", s.query, tt.query)
			}
			if s.auth != "Bearer tok" {
				t.Errorf("Authorization = %q, want %q", s.auth, "Bearer tok")
			}
			if tt.wantBody {
				if s.contentType != "application/json" {
					t.Errorf("Content-Type = %q, want application/json", s.contentType)
				}
				var sent []agenttrail.Event
				if err := json.Unmarshal(s.body, &sent); err != nil || len(sent) != 3 || sent[0].ActorID != "agent-1" {
					t.Errorf("body = %s (%v), want the 3 events as a JSON array", s.body, err)
				}
			}
		})
	}
}

func TestClientErrors(t *testing.T) {
	const pj = "application/problem+json"
	tests := []struct {
		name       string
		status     int
		ct, body   string
		retryAfter string
		code       string
		field      string
		msg        string
		retryable  bool
		wait       time.Duration
	}{
		{"invalid with field member", 400, pj, `{"status":400,"detail":"limit: must be an integer from 1 to 200, not \"500\"","code":"invalid","field":"limit"}`, "",
			agenttrail.EINVALID, "limit", `must be an integer from 1 to 200, not "500"`, false, 0},
		{"invalid without a field member", 400, pj, `{"detail":"metadata.llm.input_tokens: must not be negative"}`, "",
			agenttrail.EINVALID, "", "metadata.llm.input_tokens: must not be negative", false, 0},
		{"invalid detail that is a sentence", 400, pj, `{"detail":"bad thing happened: twice"}`, "",
			agenttrail.EINVALID, "", "bad thing happened: twice", false, 0},
		{"not found", 404, pj, `{"detail":"no event e1","code":"not_found"}`, "",
			agenttrail.ENOTFOUND, "", "no event e1", false, 0},
		{"unauthorized", 401, pj, `{"detail":"missing bearer token"}`, "",
			agenttrail.EUNAUTHORIZED, "", "missing bearer token", false, 0},
		{"forbidden", 403, pj, `{"detail":"read role required"}`, "",
			agenttrail.EFORBIDDEN, "", "read role required", false, 0},
		{"too large keeps its field", 413, pj, `{"detail":"body: is over the limit","code":"too_large","field":"body"}`, "",
			agenttrail.ETOOLARGE, "body", "is over the limit", false, 0},
		{"rate limited", 429, pj, `{"detail":"slow down"}`, "3",
			agenttrail.ERATELIMIT, "", "slow down", true, 3 * time.Second},
		{"unavailable", 503, pj, `{"detail":"the ingest queue is full; retry later","code":"unavailable"}`, "1",
			agenttrail.EUNAVAILABLE, "", "the ingest queue is full; retry later", true, time.Second},
		{"internal", 500, pj, `{"detail":"internal error","code":"internal"}`, "",
			agenttrail.EINTERNAL, "", "internal error", true, 0},
		{"proxy page", 502, "text/html", "<html>bad gateway</html>\nmore", "",
			agenttrail.EUNAVAILABLE, "", "Bad Gateway: <html>bad gateway</html>", true, 0},
		{"empty body", 504, "", "", "",
			agenttrail.EUNAVAILABLE, "", "Gateway Timeout", true, 0},
		{"not implemented", 501, pj, `{"detail":"no"}`, "",
			agenttrail.EUNAVAILABLE, "", "no", false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.retryAfter != "" {
				h.Set("Retry-After", tt.retryAfter)
			}
			srv, _ := answering(t, tt.status, tt.ct, tt.body, h)
			c := New(srv.URL)
			defer c.CloseIdleConnections()
			_, err := c.Query(context.Background(), agenttrail.Filter{}, QueryOptions{})
			var ae *agenttrail.Error
			if !errors.As(err, &ae) {
				t.Fatalf("Query error = %v, want an *agenttrail.Error in its chain", err)
			}
			if ae.Code != tt.code || ae.Field != tt.field || ae.Message != tt.msg {
				t.Errorf("error = {%q %q %q}, want {%q %q %q}", ae.Code, ae.Field, ae.Message, tt.code, tt.field, tt.msg)
			}
			if got := agenttrail.ErrorCode(err); got != tt.code {
				t.Errorf("ErrorCode = %q, want %q", got, tt.code)
			}
			if got := IsRetryable(err); got != tt.retryable {
				t.Errorf("IsRetryable = %v, want %v", got, tt.retryable)
			}
			if got := RetryAfter(err); got != tt.wait {
				t.Errorf("RetryAfter = %v, want %v", got, tt.wait)
			}
			var se *StatusError
			if !errors.As(err, &se) || se.StatusCode != tt.status {
				t.Errorf("StatusError = %v, want status %d", se, tt.status)
			}
		})
	}
}

func TestIsRetryableTransport(t *testing.T) {
	down := New("http://" + freeAddr(t))
	_, refusedErr := down.Ingest(context.Background(), []agenttrail.Event{testEvent(0)})

	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	srv, _ := answering(t, 200, "application/json", `{}`, nil)
	up := New(srv.URL)
	defer up.CloseIdleConnections()
	_, canceledErr := up.Query(canceled, agenttrail.Filter{}, QueryOptions{})

	garbled, _ := answering(t, 200, "application/json", `{"events": [`, nil)
	g := New(garbled.URL)
	defer g.CloseIdleConnections()
	_, truncatedErr := g.Query(context.Background(), agenttrail.Filter{}, QueryOptions{})

	notJSON, _ := answering(t, 200, "application/json", `<html>`, nil)
	n := New(notJSON.URL)
	defer n.CloseIdleConnections()
	_, syntaxErr := n.Query(context.Background(), agenttrail.Filter{}, QueryOptions{})

	_, schemeErr := New("ftp://127.0.0.1:1").Query(context.Background(), agenttrail.Filter{}, QueryOptions{})

	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"connection refused", refusedErr, true},
		{"canceled by the caller", canceledErr, false},
		{"answer cut short", truncatedErr, true},
		{"answer not JSON", syntaxErr, false},
		{"unsupported scheme", schemeErr, false},
		{"deadline", context.DeadlineExceeded, true},
		{"plain error", errors.New("boom"), false},
		{"unavailable code", agenttrail.Errorf(agenttrail.EUNAVAILABLE, "busy"), true},
	}
	for _, tt := range tests {
		if tt.name != "nil" && tt.err == nil {
			t.Fatalf("%s: the call did not fail", tt.name)
		}
		if got := IsRetryable(tt.err); got != tt.want {
			t.Errorf("IsRetryable(%s: %v) = %v, want %v", tt.name, tt.err, got, tt.want)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"-5", 0},
		{"7", 7 * time.Second},
		{" 2 ", 2 * time.Second},
		{"999999", 24 * time.Hour},
		{"Sun, 01 Mar 2026 12:00:30 GMT", 30 * time.Second},
		{"Sun, 01 Mar 2026 11:00:00 GMT", 0},
		{"soon", 0},
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestGetNeedsID(t *testing.T) {
	_, err := New("http://127.0.0.1:1").Get(context.Background(), "")
	if agenttrail.ErrorCode(err) != agenttrail.EINVALID || agenttrail.ErrorField(err) != "id" {
		t.Errorf("Get(\"\") error = %v, want EINVALID naming id", err)
	}
}
