package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/client"
	"github.com/agenttrail/agenttrail/servertest"
)

const cliTrace = "4bf92f3577b34da6a3ce929d0e0e4736"

// TestTraceCommand records one task across four surfaces on a real server
// — an LLM call that decides on a tool call, which runs a shell command
// that deletes a pod, while a second LLM call is denied — plus an event
// whose parent span was never recorded, an event of another trace and one
// of no trace, and prints the task with `agenttrail trace`.
func TestTraceCommand(t *testing.T) {
	srv := servertest.Start(t)
	c := client.New(srv.URL, client.WithToken(srv.Token))
	defer c.CloseIdleConnections()
	at := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	ev := func(id string, ms int, source, action, span, parent string) agenttrail.Event {
		return agenttrail.Event{ID: id, Time: at.Add(time.Duration(ms) * time.Millisecond), ActorType: agenttrail.ActorAgent,
			ActorID: "agent-7", Source: source, Action: action, Result: agenttrail.ResultSuccess,
			TraceID: strings.ToUpper(cliTrace), SpanID: span, ParentSpanID: parent, SessionID: "task 42"}
	}
	cost := 0.0125
	llm := ev("llm", 0, agenttrail.SourceLLM, "chat.completions", "00000000000000a1", "00000000000000f0")
	llm.DurationMS, llm.ResourceType, llm.ResourceID = 1500, "model", "gpt-x"
	if err := llm.SetLLM(agenttrail.LLM{Model: "gpt-x", InputTokens: 100, OutputTokens: 20, CostUSD: &cost}); err != nil {
		t.Fatal(err)
	}
	tool := ev("tool", 1600, agenttrail.SourceMCP, "tools/call", "00000000000000b1", "00000000000000f0")
	tool.ResourceType, tool.ResourceID, tool.DurationMS = "mcp_tool", "shell/run", 900
	shell := ev("shell", 1700, agenttrail.SourceShell, "shell_exec", "00000000000000c1", "00000000000000b1")
	shell.DurationMS = 700
	kube := ev("kube", 1800, agenttrail.SourceKube, "DELETE /api/v1/namespaces/default/pods/web-1", "00000000000000d1", "00000000000000c1")
	kube.StatusCode, kube.DurationMS = 200, 35
	denied := ev("denied", 2600, agenttrail.SourceLLM, "chat.completions", "00000000000000e1", "00000000000000f0")
	denied.Result, denied.StatusCode = agenttrail.ResultDenied, 429
	orphan := ev("orphan", 3000, agenttrail.SourceEgress, "GET /status", "00000000000000e2", "0000000000000bad")
	other := ev("other", 100, agenttrail.SourceShell, "ls", "00000000000000a1", "")
	other.TraceID = "00000000000000000000000000000001"
	untraced := agenttrail.Event{ID: "untraced", Time: at, ActorType: agenttrail.ActorAgent, ActorID: "agent-7",
		Source: agenttrail.SourceShell, Action: "pwd", Result: agenttrail.ResultSuccess}
	// The root span, recorded last: the agent's own event for the task.
	root := ev("root", -5, "agent", "task", "00000000000000f0", "")
	root.DurationMS = 3100
	events := []agenttrail.Event{kube, shell, llm, denied, tool, orphan, other, untraced, root}
	if res, err := c.Ingest(context.Background(), events); err != nil || res.Accepted != len(events) {
		t.Fatalf("Ingest = %+v, %v", res, err)
	}

	code, stdout, stderr := runCLI(t, "trace", cliTrace, "--server", srv.URL, "--token", srv.Token)
	if code != 0 {
		t.Fatalf("trace = %d: %s", code, stderr)
	}
	t.Logf("agenttrail trace %s:\n%s", cliTrace, stdout)
	lines := strings.Split(strings.TrimRight(stdout, "\n"), "\n")
	// The tree, line by line: what each line must hold, in order.
	want := [][]string{
		{"trace " + cliTrace, "session task 42"},
		{"TIME", "EVENT", "RESOURCE", "RESULT", "DURATION", "COST"},
		{"agent  task", "3.1s"},
		{"├─ llm-proxy  chat.completions", "model/gpt-x", "success", "1.5s", "$0.0125"},
		{"├─ mcp-tool  tools/call", "mcp_tool/shell/run", "900ms"},
		{"│  └─ shell  shell_exec", "700ms"},
		{"│     └─ k8s-proxy  DELETE /api/v1/namespaces/default/pods/web-1", "success (200)", "35ms"},
		{"└─ llm-proxy  chat.completions", "denied (429)", "-  "},
		{"forward-proxy  GET /status"}, // its parent is not in the trace: a root
		{"total: 7 events", "(3.1s)", "1 denied", "LLM 100 tokens in, 20 out, $0.0125"},
	}
	if len(lines) != len(want) {
		t.Fatalf("trace printed %d lines, want %d:\n%s", len(lines), len(want), stdout)
	}
	for i, parts := range want {
		for _, p := range parts {
			if !strings.Contains(lines[i], p) {
				t.Errorf("line %d = %q, want it to hold %q\n%s", i, lines[i], p, stdout)
			}
		}
	}
	for _, not := range []string{"ls", "pwd"} {
		if strings.Contains(stdout, "  "+not+" ") {
			t.Errorf("trace shows %q, an event of another trace or of none:\n%s", not, stdout)
		}
	}

	// --json: the events of the trace in time order, as stored.
	code, stdout, stderr = runCLI(t, "trace", "--server", srv.URL, "--token", srv.Token, "--json", cliTrace)
	if code != 0 {
		t.Fatalf("trace --json = %d: %s", code, stderr)
	}
	var ids []string
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		var e agenttrail.Event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("trace --json line %q: %v", line, err)
		}
		if e.TraceID != cliTrace {
			t.Errorf("trace --json event %s trace_id %q, want %q", e.ID, e.TraceID, cliTrace)
		}
		ids = append(ids, e.ID)
	}
	if got := strings.Join(ids, ","); got != "root,llm,tool,shell,kube,denied,orphan" {
		t.Errorf("trace --json order = %s, want time order root,llm,tool,shell,kube,denied,orphan", got)
	}

	// query --trace-id and --session-id select the same task.
	code, stdout, _ = runCLI(t, "query", "--server", srv.URL, "--token", srv.Token, "--trace-id", cliTrace,
		"--session-id", "task 42", "--columns", "id,trace,span,session", "--all", "--sort", "time")
	if code != 0 || strings.Count(stdout, cliTrace) != 7 || !strings.Contains(stdout, "task 42") {
		t.Errorf("query --trace-id --session-id = %d:\n%s", code, stdout)
	}

	for _, c := range []struct {
		args []string
		code int
		say  string
	}{
		{[]string{"trace"}, 2, "want one trace id"},
		{[]string{"trace", "not-a-trace"}, 2, "not a trace id"},
		{[]string{"trace", cliTrace, cliTrace}, 2, "want one trace id"},
		{[]string{"trace", "--server", srv.URL, "--token", srv.Token, "ffffffffffffffffffffffffffffffff"}, 0, "no events in trace"},
	} {
		code, stdout, stderr := runCLI(t, c.args...)
		if code != c.code || !strings.Contains(stdout+stderr, c.say) {
			t.Errorf("%s = %d, %q %q; want %d saying %q", strings.Join(c.args, " "), code, stdout, stderr, c.code, c.say)
		}
	}
}

// TestTraceTreeSurvivesLyingIds arranges events whose ids claim what no
// real trace has: a cycle of parents, an event that is its own parent's
// parent, spans shared by several events. Every event is printed once.
func TestTraceTreeSurvivesLyingIds(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ev := func(id, span, parent string) agenttrail.Event {
		return agenttrail.Event{ID: id, Time: at, Source: "shell", Action: id, Result: agenttrail.ResultSuccess,
			TraceID: cliTrace, SpanID: span, ParentSpanID: parent}
	}
	events := []agenttrail.Event{
		ev("a", "000000000000000a", "000000000000000b"),
		ev("b", "000000000000000b", "000000000000000a"), // a and b: a cycle
		ev("c", "000000000000000c", ""),
		ev("c2", "000000000000000c", ""), // the same span as c: its sibling
		ev("d", "000000000000000d", "000000000000000c"),
		ev("e", "", "000000000000000c"),
		ev("f", "", ""),
	}
	var count func(ns []*traceNode) int
	count = func(ns []*traceNode) int {
		n := len(ns)
		for _, x := range ns {
			n += count(x.children)
		}
		return n
	}
	roots := traceTree(events)
	if n := count(roots); n != len(events) {
		t.Fatalf("traceTree holds %d events, want each of the %d once", n, len(events))
	}
	var names []string
	for _, r := range roots {
		var kids []string
		for _, k := range r.children {
			kids = append(kids, k.event.ID)
		}
		names = append(names, r.event.ID+"("+strings.Join(kids, " ")+")")
	}
	if got := strings.Join(names, " "); !strings.Contains(got, "c(d e)") || !strings.Contains(got, "c2()") || !strings.Contains(got, "f()") {
		t.Errorf("traceTree roots = %s, want c with children d and e, c2 beside c, f alone", got)
	}
}
