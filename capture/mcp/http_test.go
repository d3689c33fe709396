package mcp

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/capture"
)

// seenRequest is what the upstream server saw of one request.
type seenRequest struct {
	method, sessionID, protocolVersion, authorization, actorHeader string
}

// upstreamLog wraps the MCP server's handler and keeps what reached it.
type upstreamLog struct {
	mu   sync.Mutex
	seen []seenRequest
	next http.Handler
}

func (u *upstreamLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	u.seen = append(u.seen, seenRequest{
		method: r.Method, sessionID: r.Header.Get(HeaderSessionID),
		protocolVersion: r.Header.Get("Mcp-Protocol-Version"),
		authorization:   r.Header.Get("Authorization"), actorHeader: r.Header.Get(capture.HeaderActorID),
	})
	u.mu.Unlock()
	u.next.ServeHTTP(w, r)
}

func (u *upstreamLog) requests() []seenRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]seenRequest(nil), u.seen...)
}

// headerTransport adds headers to every request the SDK client sends.
type headerTransport struct{ h http.Header }

func (t headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range t.h {
		r.Header[k] = v
	}
	return http.DefaultTransport.RoundTrip(r)
}

// startHTTPProxy runs an SDK Streamable HTTP server with opts, an HTTPProxy
// in front of it, and returns the proxy's endpoint.
func startHTTPProxy(t *testing.T, cfg Config, opts *sdk.StreamableHTTPOptions) (string, *upstreamLog, *HTTPProxy) {
	t.Helper()
	srv := newTestServer()
	log := &upstreamLog{next: sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return srv }, opts)}
	upstream := httptest.NewServer(log)
	t.Cleanup(upstream.Close)
	cfg.Upstream = upstream.URL + "/mcp"
	p, err := NewHTTP(cfg)
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(p)
	t.Cleanup(func() { front.Close(); p.Close() })
	return front.URL + "/mcp", log, p
}

func connectHTTP(t *testing.T, endpoint string, h http.Header, answer string, opts *sdk.ClientOptions) *sdk.ClientSession {
	t.Helper()
	tr := &sdk.StreamableClientTransport{Endpoint: endpoint, HTTPClient: &http.Client{Transport: headerTransport{h}}, MaxRetries: -1}
	c := newTestClient(answer)
	if opts != nil {
		c = sdk.NewClient(&sdk.Implementation{Name: "test-agent", Version: "0.9.1"}, opts)
	}
	cs, err := c.Connect(context.Background(), tr, nil)
	if err != nil {
		t.Fatalf("Connect through the proxy: %v", err)
	}
	return cs
}

func TestHTTPProxyRecordsEachCall(t *testing.T) {
	for _, tc := range []struct {
		name      string
		opts      *sdk.StreamableHTTPOptions
		handshake string // the first recorded method
		sessions  bool
	}{
		{"stateful SSE", nil, "initialize", true},
		{"stateful JSON", &sdk.StreamableHTTPOptions{JSONResponse: true}, "initialize", true},
		{"stateless", &sdk.StreamableHTTPOptions{Stateless: true}, "server/discover", false},
		{"stateless JSON", &sdk.StreamableHTTPOptions{Stateless: true, JSONResponse: true}, "server/discover", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &memRecorder{}
			endpoint, upstream, _ := startHTTPProxy(t, testConfig(rec), tc.opts)
			h := http.Header{"Authorization": {"Bearer tok-ci"}, capture.HeaderActorID: {"agent-spoofed"}}
			cs := connectHTTP(t, endpoint, h, "accept", nil)
			ctx := context.Background()
			if res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "echo", Arguments: map[string]any{"msg": "over http"}}); err != nil || res.IsError {
				t.Fatalf("echo = %v, %v", res, err)
			}
			if res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "fail", Arguments: map[string]any{}}); err != nil || !res.IsError {
				t.Fatalf("fail = %v, %v", res, err)
			}
			if _, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "nope", Arguments: map[string]any{}}); err == nil {
				t.Fatal("an unknown tool succeeded")
			}
			sessionID := cs.ID()
			if err := cs.Close(); err != nil {
				t.Logf("Close: %v", err)
			}

			hs := rec.call(t, tc.handshake, "")
			md := mcpMeta(t, hs)
			if md.Client == nil || md.Client.Name != "test-agent" || md.Server != "test-server" || md.Transport != "http" {
				t.Errorf("%s metadata = %s", tc.handshake, hs.Metadata)
			}
			echo := rec.call(t, "tools/call", "echo")
			md = mcpMeta(t, echo)
			if echo.Result != agenttrail.ResultSuccess || md.ContentPreview != "echo: over http" || echo.StatusCode != http.StatusOK {
				t.Errorf("echo = %s %d %s", echo.Result, echo.StatusCode, echo.Metadata)
			}
			if echo.ActorID != "agent-ci" || echo.ActorName != "CI agent" || echo.Org != "acme" {
				t.Errorf("echo actor = %s %q org %q, want agent-ci from the bearer token", echo.ActorID, echo.ActorName, echo.Org)
			}
			if md.SessionID != sessionID {
				t.Errorf("echo session_id = %q, want the client's %q", md.SessionID, sessionID)
			}
			if e := rec.call(t, "tools/call", "fail"); e.Result != agenttrail.ResultFailure {
				t.Errorf("fail = %s", e.Result)
			}
			if e := rec.call(t, "tools/call", "nope"); e.Result != agenttrail.ResultError || mcpMeta(t, e).Error == nil {
				t.Errorf("nope = %s %s", e.Result, e.Metadata)
			}

			seen := upstream.requests()
			var posts, deletes int
			for _, r := range seen {
				if r.actorHeader != "" {
					t.Errorf("the upstream got %s = %q; the proxy must remove it", capture.HeaderActorID, r.actorHeader)
				}
				if r.authorization != "Bearer tok-ci" {
					t.Errorf("the upstream got Authorization %q, want it forwarded", r.authorization)
				}
				switch r.method {
				case http.MethodPost:
					posts++
				case http.MethodDelete:
					deletes++
				}
			}
			if tc.sessions {
				if sessionID == "" {
					t.Fatal("the client got no session id through the proxy")
				}
				last := seen[len(seen)-1]
				if last.method != http.MethodDelete || last.sessionID != sessionID || last.protocolVersion == "" {
					t.Errorf("last upstream request = %+v, want DELETE of session %q with its protocol version", last, sessionID)
				}
			} else if deletes != 0 || sessionID != "" {
				t.Errorf("stateless: %d DELETEs, session %q", deletes, sessionID)
			}
			if posts < 4 {
				t.Errorf("the upstream saw %d POSTs, want at least 4", posts)
			}
			for _, e := range rec.All() {
				checkValid(t, e)
			}
		})
	}
}

// A server-to-client request arrives on the POST's event stream and is
// answered in another POST of the same session.
func TestHTTPProxyElicitation(t *testing.T) {
	for _, answer := range []string{"accept", "decline"} {
		t.Run(answer, func(t *testing.T) {
			rec := &memRecorder{}
			endpoint, _, _ := startHTTPProxy(t, testConfig(rec), nil)
			cs := connectHTTP(t, endpoint, nil, answer, nil)
			defer cs.Close()
			res, err := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: "ask", Arguments: map[string]any{"question": "deploy?"}})
			if err != nil || res.IsError {
				t.Fatalf("ask = %v, %v", res, err)
			}
			e := rec.call(t, "elicitation/create", "")
			want := map[string]agenttrail.Result{"accept": agenttrail.ResultSuccess, "decline": agenttrail.ResultDenied}[answer]
			md := mcpMeta(t, e)
			if e.Result != want || e.ActorID != "mcp-server:test-server" || md.Direction != DirectionServerToClient || md.Agent != "agent-test" {
				t.Errorf("elicitation = %s by %s, %s; want %s by the server", e.Result, e.ActorID, e.Metadata, want)
			}
			if md.SessionID == "" || md.SessionID != cs.ID() {
				t.Errorf("elicitation session_id = %q, want %q", md.SessionID, cs.ID())
			}
		})
	}
}

// The proxy flushes each event of a stream as it arrives: the progress
// notification reaches the client while the tool is still running.
func TestHTTPProxyStreamsEvents(t *testing.T) {
	rec := &memRecorder{}
	endpoint, _, _ := startHTTPProxy(t, testConfig(rec), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	progressed := make(chan struct{})
	var once sync.Once
	cs := connectHTTP(t, endpoint, nil, "", &sdk.ClientOptions{
		ProgressNotificationHandler: func(context.Context, *sdk.ProgressNotificationClientRequest) {
			once.Do(func() { close(progressed); cancel() })
		},
	})
	defer cs.Close()
	params := &sdk.CallToolParams{Name: "slow", Arguments: map[string]any{}}
	params.SetProgressToken("p1")
	if _, err := cs.CallTool(ctx, params); err == nil {
		t.Fatal("slow returned before it was cancelled")
	}
	select {
	case <-progressed:
	default:
		t.Fatal("the progress notification did not reach the client while the tool ran")
	}
	e := rec.call(t, "tools/call", "slow")
	if md := mcpMeta(t, e); e.Result != agenttrail.ResultError || !md.Cancelled {
		t.Errorf("slow = %s %s, want a cancelled error", e.Result, e.Metadata)
	}
}

func TestHTTPProxyActorHeader(t *testing.T) {
	rec := &memRecorder{}
	endpoint, upstream, _ := startHTTPProxy(t, testConfig(rec), nil)
	cs := connectHTTP(t, endpoint, http.Header{capture.HeaderActorID: {"agent-x"}}, "", nil)
	if _, err := cs.ListTools(context.Background(), nil); err != nil {
		t.Fatalf("ListTools: %v", err)
	}
	cs.Close()
	if e := rec.call(t, "tools/list", ""); e.ActorID != "agent-x" || e.Org != "acme" {
		t.Errorf("tools/list actor = %s org %q, want agent-x from the header, org from the default", e.ActorID, e.Org)
	}
	for _, r := range upstream.requests() {
		if r.actorHeader != "" {
			t.Errorf("the upstream got %s = %q", capture.HeaderActorID, r.actorHeader)
		}
	}
}

func TestHTTPProxyUpstreamDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String() + "/mcp"
	l.Close()
	rec := &memRecorder{}
	cfg := testConfig(rec)
	cfg.Upstream = dead
	p, err := NewHTTP(cfg)
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(p)
	defer front.Close()
	tr := &sdk.StreamableClientTransport{Endpoint: front.URL, MaxRetries: -1}
	if _, err := newTestClient("").Connect(context.Background(), tr, nil); err == nil {
		t.Fatal("Connect succeeded with the MCP server down")
	}
	e := rec.waitFor(t, "an error", func(e agenttrail.Event) bool { return e.Result == agenttrail.ResultError })
	if e.StatusCode != http.StatusBadGateway || !strings.Contains(e.Description, "unreachable") {
		t.Errorf("event = %s %d %q, want 502 naming the unreachable server", e.Action, e.StatusCode, e.Description)
	}
	checkValid(t, e)
}

func TestNewHTTPRejectsBadConfig(t *testing.T) {
	rec := &memRecorder{}
	for _, tc := range []struct {
		name string
		edit func(*Config)
	}{
		{"no upstream", func(c *Config) { c.Upstream = "" }},
		{"not http", func(c *Config) { c.Upstream = "ftp://127.0.0.1/" }},
		{"no recorder", func(c *Config) { c.Recorder = nil }},
		{"no identities", func(c *Config) { c.Identities = nil }},
	} {
		cfg := testConfig(rec)
		cfg.Upstream = "http://127.0.0.1:1/mcp"
		tc.edit(&cfg)
		if _, err := NewHTTP(cfg); err == nil {
			t.Errorf("NewHTTP with %s succeeded", tc.name)
		}
	}
}

// A response too large to observe is relayed whole and recorded as
// answered, uninspected; the call is not left to time out as an error.
func TestHTTPProxyResponseTooLargeToObserve(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts *sdk.StreamableHTTPOptions
	}{
		{"sse", nil},
		{"json", &sdk.StreamableHTTPOptions{JSONResponse: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &memRecorder{}
			cfg := testConfig(rec)
			cfg.MaxBodyBytes = 700 // above every request and small result, below tools/list's result
			endpoint, _, _ := startHTTPProxy(t, cfg, tc.opts)
			cs := connectHTTP(t, endpoint, nil, "", nil)
			defer cs.Close()
			res, err := cs.ListTools(context.Background(), nil)
			if err != nil || len(res.Tools) != 5 {
				t.Fatalf("ListTools = %v, %v; want the 5 tools relayed whole", res, err)
			}
			e := rec.call(t, "tools/list", "")
			if e.Result != agenttrail.ResultSuccess || !strings.Contains(e.Description, "not inspected") {
				t.Errorf("tools/list = %s %q, want success, not inspected", e.Result, e.Description)
			}
		})
	}
}

// TestHTTPUnknownCredentialRefused connects with the MCP SDK without a
// mapped token to a proxy that maps tokens and admits no others: the
// client is refused, the upstream sees nothing, and the refused call is
// recorded as denied. A mapped token goes through.
func TestHTTPUnknownCredentialRefused(t *testing.T) {
	rec := &memRecorder{}
	cfg := testConfig(rec)
	cfg.Identities.AllowUnmapped = false
	endpoint, upstream, _ := startHTTPProxy(t, cfg, nil)
	tr := &sdk.StreamableClientTransport{Endpoint: endpoint, HTTPClient: &http.Client{Transport: headerTransport{http.Header{"Authorization": {"Bearer guessed"}}}}, MaxRetries: -1}
	if _, err := newTestClient("").Connect(context.Background(), tr, nil); err == nil {
		t.Fatal("Connect with an unmapped token: no error")
	}
	if n := len(upstream.requests()); n != 0 {
		t.Fatalf("the upstream saw %d requests", n)
	}
	// The SDK's first call (server/discover or initialize) is refused.
	e := rec.Wait(t, 1)[0]
	if e.Action == "" || e.Result != agenttrail.ResultDenied || e.StatusCode != http.StatusUnauthorized || e.ActorID != "agent-test" {
		t.Errorf("event %q %s %d by %q; want a call denied 401 by the default actor", e.Action, e.Result, e.StatusCode, e.ActorID)
	}
	cs := connectHTTP(t, endpoint, http.Header{"Authorization": {"Bearer tok-ci"}}, "", nil)
	cs.Close()
}
