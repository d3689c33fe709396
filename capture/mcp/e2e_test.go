package mcp

import (
	"context"
	"net/http"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/capture/capturetest"
	"github.com/agenttrail/agenttrail/servertest"
)

// mcpEvents selects the events of this surface in the store.
func mcpEvents() agenttrail.Filter {
	return agenttrail.Filter{Source: []string{agenttrail.SourceMCP}}
}

func findStored(t *testing.T, events []agenttrail.Event, action, resource string) agenttrail.Event {
	t.Helper()
	for _, e := range events {
		if e.Action == action && e.ResourceID == resource {
			return e
		}
	}
	t.Fatalf("no stored %s %s among:\n%s", action, resource, dump(events))
	return agenttrail.Event{}
}

// An agent's calls through the HTTP proxy are stored by the real server.
func TestEndToEndHTTPStored(t *testing.T) {
	srv := servertest.Start(t)
	cfg := testConfig(capturetest.Recorder(t, srv.URL))
	endpoint, _, _ := startHTTPProxy(t, cfg, nil)
	cs := connectHTTP(t, endpoint, http.Header{"Authorization": {"Bearer tok-ci"}}, "", nil)
	ctx := context.Background()
	if _, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "echo", Arguments: map[string]any{"msg": "stored"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "fail", Arguments: map[string]any{}}); err != nil {
		t.Fatal(err)
	}
	cs.Close()

	events := capturetest.WaitEvents(t, srv.Store, mcpEvents(), 4) // server/discover, initialize and two calls
	echo := findStored(t, events, "tools/call", "echo")
	md := mcpMeta(t, echo)
	if echo.ActorID != "agent-ci" || echo.Org != "acme" || echo.Result != agenttrail.ResultSuccess || echo.Seq == 0 {
		t.Errorf("stored echo = %s %s %s seq %d", echo.ActorID, echo.Org, echo.Result, echo.Seq)
	}
	if md.Server != "test-server" || md.ContentPreview != "echo: stored" || md.Transport != "http" || md.SessionID == "" {
		t.Errorf("stored echo metadata = %s", echo.Metadata)
	}
	if fail := findStored(t, events, "tools/call", "fail"); fail.Result != agenttrail.ResultFailure {
		t.Errorf("stored fail = %s", fail.Result)
	}
	if init := findStored(t, events, "initialize", "test-server"); mcpMeta(t, init).Client.Name != "test-agent" {
		t.Errorf("stored initialize = %s", init.Metadata)
	}
}

// With the audit server down, proxied MCP traffic still flows; the events
// arrive once the server is back.
func TestEndToEndAuditServerDown(t *testing.T) {
	srv := servertest.Start(t)
	addr, dataDir := srv.Addr, srv.DataDir
	rec := capturetest.Recorder(t, srv.URL)
	srv.Stop()

	p, err := NewStdio(testConfig(rec))
	if err != nil {
		t.Fatal(err)
	}
	rig := startStdioRig(t, p, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, msg := range []string{"one", "two", "three"} {
		res, err := rig.cs.CallTool(ctx, &sdk.CallToolParams{Name: "echo", Arguments: map[string]any{"msg": msg}})
		if err != nil || res.Content[0].(*sdk.TextContent).Text != "echo: "+msg {
			t.Fatalf("echo %s with the audit server down = %v, %v", msg, res, err)
		}
	}
	rig.close(t)
	for deadline := time.Now().Add(10 * time.Second); rec.Stats().Spooled < 4; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the Recorder spooled %d events while the server was down, want 4", rec.Stats().Spooled)
		}
	}

	back := servertest.StartAt(t, addr, dataDir)
	events := capturetest.WaitEvents(t, back.Store, mcpEvents(), 4) // server/discover and three calls
	for _, e := range events {
		if md := mcpMeta(t, e); md.Transport != "stdio" || md.Server != "test-server" || e.ActorID != "agent-test" {
			t.Errorf("stored %s = %s by %s", e.Action, e.Metadata, e.ActorID)
		}
	}
	findStored(t, events, "server/discover", "test-server")
}
