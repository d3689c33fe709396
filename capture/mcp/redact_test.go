package mcp

import (
	"context"
	"net/http"
	"strings"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// Secrets in tool arguments, and echoed back in the result, never reach the
// Recorder, over either transport.
func TestRedactionThroughTheProxy(t *testing.T) {
	token := "ghp_" + strings.Repeat("Zx9Qw7", 6)
	password := "hunter2-correct-horse"
	args := map[string]any{"msg": "push with " + token, "token": password}
	check := func(t *testing.T, rec *memRecorder) {
		t.Helper()
		e := rec.call(t, "tools/call", "echo")
		all := string(e.Metadata) + e.Description
		for _, secret := range []string{token, password, "ghp_"} {
			if strings.Contains(all, secret) {
				t.Errorf("the event holds %q: %s", secret, e.Metadata)
			}
		}
		md := mcpMeta(t, e)
		if !strings.Contains(string(md.Arguments), "[REDACTED") || !strings.Contains(md.ContentPreview, "echo: push with [REDACTED") {
			t.Errorf("arguments %s, preview %q: want the secrets replaced by markers", md.Arguments, md.ContentPreview)
		}
	}

	t.Run("stdio", func(t *testing.T) {
		rec := &memRecorder{}
		p, err := NewStdio(testConfig(rec))
		if err != nil {
			t.Fatal(err)
		}
		rig := startStdioRig(t, p, nil)
		res, err := rig.cs.CallTool(context.Background(), &sdk.CallToolParams{Name: "echo", Arguments: args})
		if err != nil || !strings.Contains(res.Content[0].(*sdk.TextContent).Text, token) {
			t.Fatalf("echo = %v, %v; want the secret relayed to the agent unchanged", res, err)
		}
		rig.close(t)
		check(t, rec)
	})
	t.Run("http", func(t *testing.T) {
		rec := &memRecorder{}
		endpoint, _, _ := startHTTPProxy(t, testConfig(rec), nil)
		cs := connectHTTP(t, endpoint, http.Header{}, "", nil)
		defer cs.Close()
		res, err := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: "echo", Arguments: args})
		if err != nil || !strings.Contains(res.Content[0].(*sdk.TextContent).Text, token) {
			t.Fatalf("echo = %v, %v; want the secret relayed to the agent unchanged", res, err)
		}
		check(t, rec)
	})
}
