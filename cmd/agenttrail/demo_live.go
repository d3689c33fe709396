package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/capture"
	"github.com/agenttrail/agenttrail/capture/egress"
	"github.com/agenttrail/agenttrail/capture/llm"
	"github.com/agenttrail/agenttrail/capture/mcp"
	"github.com/agenttrail/agenttrail/capture/shell"
	"github.com/agenttrail/agenttrail/client"
	"github.com/agenttrail/agenttrail/redact"
)

// liveDemo drives real traffic through the capture proxies, in this process,
// against local stand-ins for the services agents talk to (an LLM API, an
// MCP server, a web site): the events a new user then sees were captured,
// not made up. Nothing leaves the loopback interface.
type liveDemo struct {
	rec      *client.Recorder
	redactor *redact.Redactor
	logger   *slog.Logger
	out      io.Writer
	servers  []*http.Server
	closers  []io.Closer // the capture proxies, closed after the servers
}

// The demo's agents, known to the proxies by the credentials they present.
var liveAgents = []struct {
	credential string
	actor      capture.Actor
}{
	{"sk-proxy-ci-7f3a", capture.Actor{Type: agenttrail.ActorAgent, ID: "agent-claude-ci", Name: "Claude Code (CI)", Org: "acme", Project: "payments"}},
	{"sk-proxy-sre-91bd", capture.Actor{Type: agenttrail.ActorAgent, ID: "agent-sre-copilot", Name: "SRE copilot", Org: "acme", Project: "infra"}},
}

func runLiveDemo(ctx context.Context, c *client.Client, env *Env, rounds int) error {
	logger := slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	redactor, err := redact.New()
	if err != nil {
		return err
	}
	rec, err := client.NewRecorder(c, client.RecorderConfig{Heartbeat: client.HeartbeatOff, FlushInterval: 200 * time.Millisecond, Logger: logger})
	if err != nil {
		return err
	}
	d := &liveDemo{rec: rec, redactor: redactor, logger: logger, out: env.Stdout}
	defer d.close()
	ids := &capture.Identities{Default: liveAgents[0].actor}
	for _, a := range liveAgents {
		ids.Add(a.credential, a.actor)
	}
	steps := []struct {
		name string
		run  func(context.Context, *capture.Identities, int) (int, error)
	}{
		{"llm-proxy: chat completions through the LLM proxy", d.llm},
		{"mcp-tool: tool calls through the MCP proxy", d.mcp},
		{"forward-proxy: requests through the egress proxy", d.egress},
		{"shell: commands run through agenttrail's shell capture", d.shell},
	}
	for _, s := range steps {
		n, err := s.run(ctx, ids, rounds)
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		fmt.Fprintf(env.Stdout, "%-58s %d events\n", s.name, n)
	}
	closeCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := rec.Close(closeCtx); err != nil {
		return fmt.Errorf("flush captured events: %w", err)
	}
	st := rec.Stats()
	fmt.Fprintf(env.Stdout, "captured events sent to the server: %d (dropped %d)\n", st.Sent, st.DroppedTotal())
	return nil
}

// serve runs h on a fresh loopback listener and returns its URL.
func (d *liveDemo) serve(h http.Handler) (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	d.servers = append(d.servers, srv)
	go srv.Serve(l)
	return "http://" + l.Addr().String(), nil
}

// serveProxy serves a capture proxy that newProxy returned with err, and
// closes it with the demo.
func (d *liveDemo) serveProxy(proxy http.Handler, err error) (string, error) {
	if err != nil {
		return "", err
	}
	if c, ok := proxy.(io.Closer); ok {
		d.closers = append(d.closers, c)
	}
	return d.serve(proxy)
}

func (d *liveDemo) close() {
	for _, s := range d.servers {
		s.Close()
	}
	for _, c := range d.closers {
		c.Close()
	}
}

// llm sends chat completions through the LLM proxy to a stand-in OpenAI API
// that answers with realistic usage, so tokens and cost are metered.
func (d *liveDemo) llm(ctx context.Context, ids *capture.Identities, rounds int) (int, error) {
	upstream, err := d.serve(http.HandlerFunc(fakeOpenAI))
	if err != nil {
		return 0, err
	}
	up, _ := url.Parse(upstream)
	proxyURL, err := d.serveProxy(llm.New(llm.Config{Upstream: up, Recorder: d.rec, Identities: ids, Redactor: d.redactor, Logger: d.logger}))
	if err != nil {
		return 0, err
	}
	n := 0
	for i := range rounds {
		agent := liveAgents[i%len(liveAgents)]
		model := []string{"gpt-4o", "gpt-4o-mini", "gpt-4.1"}[i%3]
		body := fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":"Summarise the failing tests in run %d"}]}`, model, i)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, proxyURL+"/v1/chat/completions", bytes.NewBufferString(body))
		req.Header.Set("Authorization", "Bearer "+agent.credential)
		req.Header.Set("Content-Type", "application/json")
		if err := call(http.DefaultClient, req); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

func fakeOpenAI(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model string `json:"model"`
	}
	json.NewDecoder(r.Body).Decode(&req)
	dated := map[string]string{"gpt-4o": "gpt-4o-2024-08-06", "gpt-4o-mini": "gpt-4o-mini-2024-07-18", "gpt-4.1": "gpt-4.1-2025-04-14"}[req.Model]
	if dated == "" {
		dated = req.Model
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"id":"chatcmpl-demo","object":"chat.completion","created":%d,"model":%q,`+
		`"choices":[{"index":0,"message":{"role":"assistant","content":"Two tests fail: TestRefund and TestLedger."},"finish_reason":"stop"}],`+
		`"usage":{"prompt_tokens":1850,"completion_tokens":212,"total_tokens":2062,"prompt_tokens_details":{"cached_tokens":1024},"completion_tokens_details":{"reasoning_tokens":0}}}`,
		time.Now().Unix(), dated)
}

// mcp calls tools on an MCP server (the official SDK's) through the MCP
// proxy, as an agent's MCP client (the official SDK's) would.
func (d *liveDemo) mcp(ctx context.Context, ids *capture.Identities, rounds int) (int, error) {
	server := sdk.NewServer(&sdk.Implementation{Name: "github", Version: "1.4.0"}, nil)
	type issueArgs struct {
		Repo  string `json:"repo"`
		Title string `json:"title"`
	}
	sdk.AddTool(server, &sdk.Tool{Name: "create_issue", Description: "open an issue"},
		func(_ context.Context, _ *sdk.CallToolRequest, in issueArgs) (*sdk.CallToolResult, any, error) {
			return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "created " + in.Repo + "#1042: " + in.Title}}}, nil, nil
		})
	sdk.AddTool(server, &sdk.Tool{Name: "merge_pull_request", Description: "merge a pull request"},
		func(context.Context, *sdk.CallToolRequest, struct{}) (*sdk.CallToolResult, any, error) {
			return &sdk.CallToolResult{IsError: true, Content: []sdk.Content{&sdk.TextContent{Text: "branch protection: 2 approvals required"}}}, nil, nil
		})
	upstream, err := d.serve(sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return server }, nil))
	if err != nil {
		return 0, err
	}
	proxyURL, err := d.serveProxy(mcp.NewHTTP(mcp.Config{Recorder: d.rec, Identities: ids, Redactor: d.redactor, Logger: d.logger, Upstream: upstream}))
	if err != nil {
		return 0, err
	}
	hc := &http.Client{Transport: bearer{token: liveAgents[0].credential}}
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "claude-code", Version: "2.1.0"}, nil).
		Connect(ctx, &sdk.StreamableClientTransport{Endpoint: proxyURL, HTTPClient: hc, MaxRetries: -1}, nil)
	if err != nil {
		return 0, err
	}
	defer cs.Close()
	n := 1 // the session's handshake is recorded too
	for i := range rounds {
		name, args := "create_issue", map[string]any{"repo": "acme/payments-api", "title": fmt.Sprintf("flaky TestRefund (run %d)", i)}
		if i%4 == 3 {
			name, args = "merge_pull_request", map[string]any{"repo": "acme/payments-api", "number": 88}
		}
		if _, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: name, Arguments: args}); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// bearer adds an Authorization header: the credential the MCP proxy maps
// to an agent.
type bearer struct{ token string }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}

// egress sends requests through the forward proxy: allowed ones to a local
// site, and one to a denied domain, which the policy refuses before any DNS
// lookup.
func (d *liveDemo) egress(ctx context.Context, ids *capture.Identities, rounds int) (int, error) {
	site, err := d.serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "artifact %s\n", r.URL.Path)
	}))
	if err != nil {
		return 0, err
	}
	proxyURL, err := d.serveProxy(egress.New(egress.Config{
		Recorder: d.rec, Identities: ids, Redactor: d.redactor, Logger: d.logger,
		Policy: egress.Policy{Allow: []string{"127.0.0.1"}, Deny: []string{"*.pastebin.com", "pastebin.com"}},
	}))
	if err != nil {
		return 0, err
	}
	pu, _ := url.Parse(proxyURL)
	// The agent presents its proxy credential, as HTTPS_PROXY=http://agent:KEY@host
	// does: unmapped requests are refused.
	pu.User = url.UserPassword(liveAgents[1].actor.ID, liveAgents[1].credential)
	hc := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu)}}
	n := 0
	for i := range rounds + 1 {
		target := fmt.Sprintf("%s/releases/v1.%d.0.tar.gz", site, i)
		if i == rounds {
			target = "http://pastebin.com/raw/exfil"
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
		if err := call(hc, req); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// shell runs commands through the shell capture, one of them failing and
// one carrying a password that is redacted before it is recorded.
func (d *liveDemo) shell(ctx context.Context, ids *capture.Identities, rounds int) (int, error) {
	actor := liveAgents[0].actor
	scripts := []string{"echo building payments-api", "test -d /nonexistent-dir", "echo deploying with password=hunter2 >/dev/null"}
	n := 0
	for i := range rounds {
		cmd := exec.CommandContext(ctx, "sh", "-c", scripts[i%len(scripts)])
		cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
		_, err := shell.Run(ctx, d.rec, actor, cmd, shell.Options{Redactor: d.redactor})
		var se *shell.StartError
		if err != nil && !errors.As(err, &se) {
			return n, err
		}
		n++
	}
	return n, nil
}

// call sends req and reads the answer to its end, whatever its status: the
// demo drives traffic for the proxies to record, denials included.
func call(hc *http.Client, req *http.Request) error {
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}
