package client_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/capture/capturetest"
	"github.com/agenttrail/agenttrail/client"
	"github.com/agenttrail/agenttrail/servertest"
)

// recordFromGo is the README's "Record from Go" example, between the
// snippet markers, with its server URL and spool directory made parameters:
// TestREADMESnippet checks the README shows exactly this code.
func recordFromGo(ctx context.Context, serverURL, spoolDir string) error {
	// snippet start
	c := client.New(serverURL, client.WithToken(os.Getenv("AGENTTRAIL_TOKEN")))
	rec, err := client.NewRecorder(c, client.RecorderConfig{
		SpoolDir: spoolDir, ActorID: "agent-ci", ActorName: "CI agent",
		Logger: slog.Default(),
	})
	if err != nil {
		return err
	}
	defer rec.Close(context.Background())
	rec.Record(ctx, agenttrail.Event{
		Source: "shell", Action: "shell_exec", ResourceType: "command", ResourceID: "make deploy",
		Result: agenttrail.ResultSuccess,
	})
	// snippet end
	return nil
}

// TestREADMESnippet runs the README's SDK example as written, with a spool
// directory that does not exist yet (as /var/lib/my-agent/agenttrail does
// not on a fresh machine): the Recorder makes it, private, and the event
// reaches the server.
func TestREADMESnippet(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.ReadFile("readme_test.go")
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile("(?s)## Record from Go.*?```go\n(.*?)```").FindSubmatch(readme)
	if block == nil {
		t.Fatal("README.md has no go block under \"Record from Go\"")
	}
	_, rest, _ := strings.Cut(string(self), "// snippet start\n")
	code, _, _ := strings.Cut(rest, "\t// snippet end")
	code = strings.NewReplacer("serverURL", `"http://127.0.0.1:7311"`, "spoolDir,", `"/var/lib/my-agent/agenttrail",`).Replace(code)
	if got, want := unindent(string(block[1])), unindent(code); got != want {
		t.Fatalf("the README's example differs from the code this test runs:\nREADME:\n%s\ntest:\n%s", got, want)
	}

	srv := servertest.Start(t)
	t.Setenv("AGENTTRAIL_TOKEN", srv.Token)
	spool := filepath.Join(t.TempDir(), "var", "lib", "my-agent", "agenttrail")
	if err := recordFromGo(t.Context(), srv.URL, spool); err != nil {
		t.Fatalf("the README's example: %v", err)
	}
	fi, err := os.Stat(spool)
	if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Fatalf("spool directory: %v, %v; want a directory of mode 0700", fi, err)
	}
	events := capturetest.WaitEvents(t, srv.Store, agenttrail.Filter{ActorID: []string{"agent-ci"}, Source: []string{"shell"}}, 1)
	if e := events[0]; e.ResourceID != "make deploy" || e.ProducerID == "" {
		t.Errorf("stored event %+v, want make deploy with a producer", e)
	}
}

// unindent trims each line's leading tabs and spaces.
func unindent(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimLeft(l, "\t ")
	}
	return strings.Join(lines, "\n")
}
