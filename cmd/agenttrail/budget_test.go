package main

import (
	"strings"
	"testing"

	"github.com/agenttrail/agenttrail/servertest"
)

func TestBudgetCommands(t *testing.T) {
	srv := servertest.Start(t)
	flags := []string{"--server", srv.URL, "--token", srv.Token}
	run := func(want int, args ...string) string {
		t.Helper()
		code, out, errOut := runCmd(t, append(args, flags...)...)
		if code != want {
			t.Fatalf("agenttrail %s = %d, want %d: %s%s", strings.Join(args, " "), code, want, out, errOut)
		}
		return out + errOut
	}
	out := run(0, "budget", "set", "daily", "--org", "acme", "--limit-usd", "50", "--period", "day", "--timezone", "Europe/Berlin", "--warn-at", "80%")
	if !strings.Contains(out, "$50.00 per day") {
		t.Errorf("budget set printed %q", out)
	}
	run(0, "budget", "set", "--org", "acme", "--model", "gpt-4o", "--limit-usd", "0.10", "--period", "total", "gpt")
	run(2, "budget", "set", "x", "--org", "acme", "--limit-usd", "1", "--period", "day", "--timezone", "Mars/Base")
	run(2, "budget", "set", "x", "--org", "acme", "--limit-usd", "1", "--period", "day", "--warn-at", "eighty")
	run(2, "budget", "set", "--org", "acme", "--limit-usd", "1", "--period", "day")
	if out := run(1, "budget", "set", "x", "--org", "acme", "--limit-usd", "1", "--period", "year"); !strings.Contains(out, "period") {
		t.Errorf("budget set --period year said %q, want the field named", out)
	}
	out = run(0, "budget", "list", "--org", "acme")
	for _, want := range []string{"daily", "$50.00", "Europe/Berlin", "80%", "gpt", "model=gpt-4o", "$0.10", "total"} {
		if !strings.Contains(out, want) {
			t.Errorf("budget list = %q, want %q in it", out, want)
		}
	}
	out = run(0, "budget", "status", "--org", "acme")
	if !strings.Contains(out, "never") || !strings.Contains(out, "$0.00") || !strings.Contains(out, "CET") {
		t.Errorf("budget status = %q, want a total budget that never resets and a Berlin reset time", out)
	}
	run(0, "budget", "rm", "gpt", "--org", "acme")
	run(1, "budget", "rm", "gpt", "--org", "acme")
	if out := run(0, "budget", "list", "--org", "acme"); strings.Contains(out, "gpt") {
		t.Errorf("after rm, budget list = %q", out)
	}
}
