package otlp

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
)

// TestEventByConventions maps one item per convention and checks the
// source, action, resource and result each gets.
func TestEventByConventions(t *testing.T) {
	start := time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC)
	res := map[string]any{"service.name": "bot", "process.command": "python"} // a resource never picks the source
	for _, tc := range []struct {
		name     string
		kind     string
		own      map[string]any
		failed   bool
		source   string
		action   string
		resource string
		result   agenttrail.Result
	}{
		{"chat", "client", map[string]any{"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o"}, false,
			agenttrail.SourceLLM, "chat", "model/gpt-4o", agenttrail.ResultSuccess},
		{"usage without an operation", "internal", map[string]any{"gen_ai.usage.input_tokens": int64(3)}, true,
			agenttrail.SourceLLM, "chat", "model/", agenttrail.ResultFailure},
		{"invoke_agent is no model call", "internal", map[string]any{"gen_ai.operation.name": "invoke_agent"}, false,
			SourceOTel, "invoke_agent is no model call", "/", agenttrail.ResultSuccess},
		{"mcp method", "client", map[string]any{"mcp.method.name": "resources/read"}, false,
			agenttrail.SourceMCP, "resources/read", "/", agenttrail.ResultSuccess},
		{"rpc call", "client", map[string]any{"rpc.system": "jsonrpc", "rpc.method": "tools/call", "gen_ai.tool.name": "grep"}, false,
			agenttrail.SourceMCP, "tools/call", "mcp_tool/grep", agenttrail.ResultSuccess},
		{"http client, no url.full", "client", map[string]any{"http.request.method": "POST", "server.address": "api.example.com", "server.port": int64(8443), "url.path": "/v1/x", "http.response.status_code": int64(403)}, false,
			agenttrail.SourceEgress, "POST api.example.com:8443/v1/x", "domain/api.example.com", agenttrail.ResultDenied},
		{"http server span is no egress", "server", map[string]any{"http.request.method": "GET"}, false,
			SourceOTel, "http server span is no egress", "/", agenttrail.ResultSuccess},
		{"process", "internal", map[string]any{"process.command_line": "make deploy", "process.exit.code": "0"}, false,
			agenttrail.SourceShell, "shell_exec", "command/make deploy", agenttrail.ResultSuccess},
		{"error.type", "internal", map[string]any{"error.type": "timeout"}, false,
			SourceOTel, "error.type", "/", agenttrail.ResultFailure},
	} {
		t.Run(tc.name, func(t *testing.T) {
			it := item{attrs: attributes{own: tc.own, res: res}, name: tc.name, kind: tc.kind, start: start, end: start.Add(time.Second), failed: tc.failed}
			e, err := (&Mapper{}).event(it)
			if err != nil {
				t.Fatal(err)
			}
			if got := e.ResourceType + "/" + e.ResourceID; e.Source != tc.source || e.Action != tc.action || got != tc.resource || e.Result != tc.result {
				t.Errorf("event = %s %q %s %s, want %s %q %s %s", e.Source, e.Action, got, e.Result, tc.source, tc.action, tc.resource, tc.result)
			}
			if e.ActorID != "bot" || e.DurationMS != 1000 || e.Description == "" {
				t.Errorf("actor %q, duration %v, description %q", e.ActorID, e.DurationMS, e.Description)
			}
			now := time.Now()
			e.Normalize(now, "")
			if err := e.Validate(now); err != nil {
				t.Errorf("the event does not validate: %v", err)
			}
			if !json.Valid(e.Metadata) {
				t.Errorf("metadata %s", e.Metadata)
			}
		})
	}
}
