package shell

import (
	"cmp"
	"context"
	"encoding/json"
	"log/slog"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/capture/capturetest"
	"github.com/agenttrail/agenttrail/redact"
	"github.com/agenttrail/agenttrail/servertest"
)

// TestEndToEnd records commands run with Run through the SDK's Recorder
// into a real server on SQLite that is down for the first ones.
func TestEndToEnd(t *testing.T) {
	ctx := context.Background()
	addr := capturetest.FreeAddr(t)
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelError}))
	rec := capturetest.Recorder(t, "http://"+addr)
	red, err := redact.New()
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Redactor: red, Logger: logger}
	run := func(argv ...string) *Result {
		t.Helper()
		res, err := Run(ctx, rec, agent, exec.Command(argv[0], argv[1:]...), opts)
		if err != nil && res == nil {
			t.Fatalf("Run(%q): %v", argv, err)
		}
		return res
	}

	// The audit server is down: commands run regardless.
	if res := run("sh", "-c", "echo building; exit 2"); res.ExitCode != 2 || string(res.Stdout) != "building\n" {
		t.Fatalf("Run with the server down = exit %d, stdout %q", res.ExitCode, res.Stdout)
	}
	run("curl", "-sS", "-u", "deploy:hunter2-Zq9", "http://127.0.0.1:1/")
	srv := servertest.StartAt(t, addr, t.TempDir())
	run("agenttrail-no-such-command-xyz")

	events := storedShell(t, srv, 3, agenttrail.Filter{})
	// Events spooled while the server was down may be stored after the
	// later one: the producer's sequence is the order the commands ran in.
	slices.SortFunc(events, func(a, b agenttrail.Event) int { return cmp.Compare(a.ProducerSeq, b.ProducerSeq) })
	wants := []struct {
		resource string
		result   agenttrail.Result
		exit     int
	}{
		{"sh -c 'echo building; exit 2'", agenttrail.ResultFailure, 2},
		{"curl -sS -u deploy:[REDACTED:basic_auth] http://127.0.0.1:1/", agenttrail.ResultFailure, 7},
		{"agenttrail-no-such-command-xyz", agenttrail.ResultError, 127},
	}
	for i, e := range events {
		w := wants[i]
		if e.ResourceID != w.resource || e.Result != w.result || shellMeta(t, e).ExitCode != w.exit {
			t.Errorf("event %d = %q %s exit %d; want %q %s exit %d", i, e.ResourceID, e.Result, shellMeta(t, e).ExitCode, w.resource, w.result, w.exit)
		}
		if e.ActorID != agent.ID || e.Org != agent.Org || e.ProducerID == "" {
			t.Errorf("event %d: actor %q, org %q, producer %q", i, e.ActorID, e.Org, e.ProducerID)
		}
		if b, _ := json.Marshal(e); strings.Contains(string(b), "hunter2") {
			t.Errorf("event %d holds the password: %s", i, b)
		}
	}
	if m := shellMeta(t, events[0]); m.Stdout != "building\n" {
		t.Errorf("stored stdout %q", m.Stdout)
	}
}
