package main

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/client"
)

// TestDemoLive runs `agenttrail demo --live` against a real server and checks
// that each capture surface delivered what it captured: LLM calls with
// metered cost, MCP tool calls (one an isError failure), egress requests (one
// denied by policy) and shell commands (one failing, one whose password never
// reaches the store).
func TestDemoLive(t *testing.T) {
	addr, data := freeAddr(t), t.TempDir()
	p := startServe(t, addr, data)
	const rounds = 4
	demo := exec.Command(binary, "demo", "--events", "1", "--live", "--rounds", strconv.Itoa(rounds))
	demo.Env = append(os.Environ(), "AGENTTRAIL_SERVER="+p.url, "AGENTTRAIL_TOKEN="+p.token)
	out, err := demo.CombinedOutput()
	if err != nil {
		t.Fatalf("agenttrail demo --live: %v\n%s", err, out)
	}

	c := p.client()
	ctx := context.Background()
	since := time.Now().Add(-time.Hour)
	buckets, err := c.Aggregate(ctx, agenttrail.Filter{Since: since}, agenttrail.DimSource)
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int64{}
	cost := map[string]float64{}
	for _, b := range buckets {
		count[b.Key], cost[b.Key] = b.Count, b.CostUSD
	}
	for source, want := range map[string]int64{"llm-proxy": rounds, "mcp-tool": rounds + 1, "forward-proxy": rounds + 1, "shell": rounds} {
		if count[source] < want {
			t.Errorf("%s events in the last hour = %d, want at least %d\ndemo output:\n%s", source, count[source], want, out)
		}
	}
	if cost["llm-proxy"] <= 0 {
		t.Errorf("llm-proxy cost = %v, want the metered cost of %d calls", cost["llm-proxy"], rounds)
	}

	withResult := func(r agenttrail.Result, f agenttrail.Filter) []agenttrail.Event {
		t.Helper()
		f.Since, f.Result = since, []string{string(r)}
		page, err := c.Query(ctx, f, client.QueryOptions{Limit: agenttrail.MaxLimit})
		if err != nil {
			t.Fatal(err)
		}
		return page.Events
	}
	failures := func(f agenttrail.Filter) []agenttrail.Event {
		t.Helper()
		return withResult(agenttrail.ResultFailure, f)
	}
	if ev := withResult(agenttrail.ResultDenied, agenttrail.Filter{Source: []string{"forward-proxy"}, ResourceID: []string{"pastebin.com"}}); len(ev) != 1 || ev[0].StatusCode != 403 {
		t.Errorf("denied egress events = %+v, want one 403 for pastebin.com", ev)
	}
	if ev := failures(agenttrail.Filter{Source: []string{"mcp-tool"}, ResourceID: []string{"merge_pull_request"}}); len(ev) != 1 {
		t.Errorf("failed MCP tool calls = %d, want 1 (isError)", len(ev))
	}
	if ev := failures(agenttrail.Filter{Source: []string{"shell"}}); len(ev) == 0 {
		t.Errorf("no failed shell command recorded")
	}

	page, err := c.Query(ctx, agenttrail.Filter{Source: []string{"shell"}, Since: since}, client.QueryOptions{Limit: agenttrail.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	redacted := 0
	for _, e := range page.Events {
		text := e.Action + e.ResourceID + e.Description + string(e.Metadata)
		if strings.Contains(text, "hunter2") {
			t.Errorf("shell event %s stored the password: %s", e.ID, text)
		}
		if strings.Contains(text, "[REDACTED:") {
			redacted++
		}
	}
	if redacted == 0 {
		t.Errorf("no shell event carries a redaction marker; the command with a password was not recorded")
	}
}
